from tests.acme_servers import challtestsrv, knot  # noqa: F401 - session fixtures
