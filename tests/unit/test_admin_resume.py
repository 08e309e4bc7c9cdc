"""`connections authenticate` resuming parked work: without storage settings it says so."""

from admin.commands import resume_parked
from shared.settings import Settings


def test_without_storage_settings_parked_work_is_not_resumed_and_the_admin_is_told_why():
    resumed, problem = resume_parked(Settings.load(env={}), "contoso.test")

    assert resumed == []
    assert problem is not None
    assert "NOT re-queued" in problem and "AzureWebJobsStorage" in problem
