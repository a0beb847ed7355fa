"""`interp app`: the command line it runs and the address it binds."""

from __future__ import annotations

import pytest

from interp.cli import build_parser
from interp.cli.app import APP_ENTRY, command


def test_binds_localhost_by_default_and_elsewhere_only_when_asked():
    args = build_parser().parse_args(["app", "--store", "/tmp/s", "--port", "8600"])
    assert (args.store, args.port, args.host) == ("/tmp/s", 8600, "127.0.0.1")
    cmd = command(args.port, args.host)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8600"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    assert str(APP_ENTRY) in cmd and APP_ENTRY.is_file()
    wide = command(8501, "0.0.0.0")
    assert wide[wide.index("--server.address") + 1] == "0.0.0.0"


@pytest.mark.parametrize("port", [0, 70000])
def test_bad_port_is_a_clear_error(port):
    with pytest.raises(ValueError, match="port must be between 1 and 65535"):
        command(port)
