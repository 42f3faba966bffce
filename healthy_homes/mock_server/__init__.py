"""A mock FHIR R4 server holding a synthetic UK GP practice (or a housing inbox).

It stands in for someone else's system, so it never imports the connector or any
domain package. Entry points: :func:`healthy_homes.mock_server.app.create_app`,
:class:`healthy_homes.mock_server.store.MockStore`,
:func:`healthy_homes.mock_server.generator.generate_practice` and the
``healthy-homes mock-server`` command.
"""
