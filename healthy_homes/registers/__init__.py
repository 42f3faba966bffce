"""Register definitions: which SNOMED CT codes put a patient on which register."""

from healthy_homes.registers.codesets import CodeSet, load_codeset
from healthy_homes.registers.definitions import RegisterDefinition, resolve_registers

__all__ = ["CodeSet", "RegisterDefinition", "load_codeset", "resolve_registers"]
