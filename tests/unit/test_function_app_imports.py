"""Cold start: importing function_app must not load the heavy SDKs."""

import subprocess
import sys


def test_function_app_import_keeps_heavy_sdks_off_the_path(repo_root):
    code = (
        "import sys, function_app\n"
        "heavy = ['msal', 'azure.identity', 'azure.keyvault.secrets', 'azure.data.tables',"
        " 'azure.storage.queue', 'requests']\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == ""
