"""A per-user upload quota where uploads land (POST /gradio_api/upload), on a real server with users
(issue 20, defect 7): any role could upload 50 MB files without limit."""

from __future__ import annotations

import httpx
import pytest

from tests.auth.team import add_team, make_settings, start


@pytest.fixture(scope="module")
def team(tmp_path_factory, model_cache_dir):
    settings = make_settings(tmp_path_factory.mktemp("quota") / "data", model_cache_dir)
    settings = settings.with_(upload_quota_bytes=10_000, upload_quota_files=3)
    add_team(settings)
    running = start(settings)
    yield running
    running.served.close()


def _signed_in(team, name: str) -> httpx.Client:
    client = httpx.Client(base_url=team.url, timeout=30)
    user, password = team.auth(name)
    answer = client.post("login", data={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    return client


def _upload(client: httpx.Client, size: int, name: str = "rows.csv") -> httpx.Response:
    return client.post("gradio_api/upload", files={"files": (name, b"x" * size, "text/csv")})


def test_each_user_uploads_at_most_the_quota_in_files_and_bytes(team):
    vic, lab = _signed_in(team, "vic"), _signed_in(team, "lab")
    for i in range(3):
        answer = _upload(vic, 1000, f"f{i}.csv")
        assert answer.status_code == 200, answer.text
    refused = _upload(vic, 1000)
    assert refused.status_code == 413
    assert "Upload refused" in refused.text and "3 files a day" in refused.text
    # another user has their own quota; a file over the byte quota is refused before it is stored
    too_big = _upload(lab, 20_000)
    assert too_big.status_code == 413 and "LLMPLAY_UPLOAD_QUOTA_BYTES" in too_big.text
    assert _upload(lab, 1000).status_code == 200


def test_the_quota_is_a_rolling_day_and_a_failed_upload_counts_nothing(settings):
    from llmplay.upload_quota import UploadQuota, UploadQuotaError

    now = [1000.0]
    quota = UploadQuota(settings.with_(upload_quota_bytes=100, upload_quota_files=2), clock=lambda: now[0])
    quota.settle(quota.admit("vic", 60), [50])
    quota.settle(quota.admit("vic", 40), None)  # Gradio refused it: nothing was stored
    assert quota.used("vic") == (60, 1)
    with pytest.raises(UploadQuotaError):
        quota.admit("vic", 41)
    now[0] += quota.window_s + 1
    assert quota.used("vic") == (0, 0)
