"""Shared pytest hooks: the record recheck names the path it took in the closing summary."""


def pytest_terminal_summary(terminalreporter):
    import sys

    module = sys.modules.get("test_cached_records") or sys.modules.get("tests.test_cached_records")
    for line in getattr(module, "SUMMARY", []):
        terminalreporter.write_line(line)
