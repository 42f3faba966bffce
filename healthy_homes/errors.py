"""The one exception tree of Healthy Homes.

Every error the package raises on purpose derives from :class:`HealthyHomesError`.
Errors carry operational context (which practice, which referral, which URL) but
never patient identifiers: their messages may reach logs and other systems.

::

    HealthyHomesError
    ├── ConfigError                 bad or missing configuration
    ├── AccessError                 a user account cannot be added or changed as asked
    ├── StorageError                database unavailable or migration failed
    │   └── AuditError              an audit entry cannot be appended (head row missing)
    ├── CryptoError                 encrypting, decrypting or keyed hashing failed
    │   ├── KeyMissingError         no keys configured, or the key file is absent or malformed
    │   ├── KeyFilePermissionError  the key file can be read by others than its owner
    │   ├── UnknownKeyError         a value was encrypted under a key id the keyring lacks
    │   └── TamperedDataError       a value failed authentication (changed, moved or wrong key)
    ├── CodeSetError                a register code set file is malformed
    ├── FhirError                   talking to a FHIR server went wrong
    │   ├── FhirTransportError      connection refused/reset, timeout   (retryable)
    │   │   └── CircuitOpenError    breaker open: nothing sent; try again after the cool-down
    │   ├── FhirStatusError         a non-2xx answer; retryable for 408, 429, 5xx
    │   ├── FhirResponseError       a 2xx answer whose body is not the FHIR we expected
    │   └── FhirAuthError           token endpoint refused us, or key not registered
    ├── FlagError
    │   └── FlagStateError          a flag cannot make that move (e.g. a second, different outcome)
    ├── ConsentError
    │   └── ConsentRequiredError    forwarding refused: no active consent
    ├── ReferralError
    │   ├── RoutingError            no housing service covers the patient
    │   └── DeliveryError           the housing endpoint did not take the referral
    └── CdsHooksError               a CDS Hooks call cannot be answered
        ├── CdsAuthError            the caller's JWT was refused (HTTP 401)
        └── PrefetchError           data the service needs is neither prefetched nor fetchable (412)
"""

from __future__ import annotations

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class HealthyHomesError(Exception):
    """Root of every error raised on purpose by Healthy Homes."""

    #: Whether trying the same operation again later may succeed.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        practice: str | None = None,
        referral: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.practice = practice
        self.referral = referral

    def __str__(self) -> str:
        context = []
        if self.practice:
            context.append(f"practice {self.practice}")
        if self.referral:
            context.append(f"referral {self.referral}")
        return f"{self.message} ({', '.join(context)})" if context else self.message


class ConfigError(HealthyHomesError):
    """Configuration is missing, malformed or inconsistent."""


class AccessError(HealthyHomesError):
    """A user account cannot be added or changed as asked (unknown role, taken name...)."""


class StorageError(HealthyHomesError):
    """The database could not be reached, or a migration failed."""


class AuditError(StorageError):
    """An audit entry could not be appended, so the action it records must not happen."""


class CryptoError(HealthyHomesError):
    """Encrypting, decrypting or keyed hashing failed; never says what the value was."""


class KeyMissingError(CryptoError):
    """No encryption keys are configured, or the key file is missing or malformed."""


class KeyFilePermissionError(CryptoError):
    """The key file is readable or writable by someone other than its owner."""


class UnknownKeyError(CryptoError):
    """A ciphertext names a data key id that the keyring does not hold."""


class TamperedDataError(CryptoError):
    """A ciphertext failed authentication: changed, moved to another column, or wrong key."""


class CodeSetError(HealthyHomesError):
    """A register code set file is missing or malformed."""


class FhirError(HealthyHomesError):
    """A FHIR interaction failed."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        practice: str | None = None,
        referral: str | None = None,
    ) -> None:
        super().__init__(message, practice=practice, referral=referral)
        self.url = url


class FhirTransportError(FhirError):
    """The server could not be reached or did not answer in time."""

    retryable = True


class CircuitOpenError(FhirTransportError):
    """The endpoint's circuit breaker is open: the request was not sent."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        url: str | None = None,
        practice: str | None = None,
        referral: str | None = None,
    ) -> None:
        super().__init__(message, url=url, practice=practice, referral=referral)
        #: Seconds until the breaker lets a trial request through.
        self.retry_after = retry_after


class FhirStatusError(FhirError):
    """The server answered with a non-success status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        url: str | None = None,
        retry_after: float | None = None,
        diagnostics: str | None = None,
        practice: str | None = None,
        referral: str | None = None,
    ) -> None:
        super().__init__(message, url=url, practice=practice, referral=referral)
        self.status_code = status_code
        self.retry_after = retry_after
        self.diagnostics = diagnostics
        self.retryable = status_code in RETRYABLE_STATUS


class FhirResponseError(FhirError):
    """A success answer whose body was not the FHIR resource we expected."""

    retryable = True  # truncated bodies are usually transient


class FhirAuthError(FhirError):
    """Authentication with the FHIR server's token endpoint failed."""


class FlagError(HealthyHomesError):
    """A flag could not be found or changed."""


class FlagStateError(FlagError):
    """The flag is not in a state that allows this move."""


class ConsentError(HealthyHomesError):
    """Consent could not be recorded or checked."""


class ConsentRequiredError(ConsentError):
    """A referral was about to leave the practice without an active consent."""


class ReferralError(HealthyHomesError):
    """A referral could not be created or delivered."""


class RoutingError(ReferralError):
    """No housing service accepts referrals for this patient."""


class DeliveryError(ReferralError):
    """The housing endpoint did not accept the referral."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        practice: str | None = None,
        referral: str | None = None,
    ) -> None:
        super().__init__(message, practice=practice, referral=referral)
        self.retryable = retryable


class CdsHooksError(HealthyHomesError):
    """A CDS Hooks request could not be answered; ``status_code`` is the HTTP answer."""

    status_code = 400


class CdsAuthError(CdsHooksError):
    """The calling EHR's JWT was missing, malformed, untrusted, expired or replayed."""

    status_code = 401


class PrefetchError(CdsHooksError):
    """Needed FHIR data was not prefetched and could not be fetched (CDS Hooks says 412)."""

    status_code = 412
