pytest_plugins = ["healthy_homes.mock_server.pytest_plugin"]
