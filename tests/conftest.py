"""Shared pytest hooks: the record recheck names the path it took, and the smoke run of the
chapters its time per chapter, in the closing summary."""


def pytest_terminal_summary(terminalreporter):
    import sys

    for name in ("test_cached_records", "test_smoke_chapters"):
        module = sys.modules.get(name) or sys.modules.get(f"tests.{name}")
        for line in getattr(module, "SUMMARY", []):
            terminalreporter.write_line(line)
