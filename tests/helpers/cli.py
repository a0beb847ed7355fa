"""Command-line test helpers: the one error line a bad input must give."""


def one_line(capsys) -> str:
    """stderr's single non-empty line (no traceback); fails otherwise."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]
