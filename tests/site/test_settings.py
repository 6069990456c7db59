"""Settings from the environment: embedded defaults for development, a hardened production mode."""
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

from config.env import load_dev_secrets

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, env_overrides):
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def production_env():
    return {
        "TESSERA_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "TESSERA_SIGNING_KEY": secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": "tessera.example.com",
    }


def test_production_settings_pass_check_deploy_with_no_warnings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_its_secrets():
    env = production_env()
    env["DJANGO_SECRET_KEY"] = ""
    result = run_manage("check", env_overrides=env)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_development_secrets_are_generated_once_private_and_stable(tmp_path):
    path = tmp_path / "var" / "dev-secrets.json"
    first = load_dev_secrets(path)
    assert len(first["SECRET_KEY"]) >= 50 and first["SIGNING_KEY"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_dev_secrets(path) == first


def test_development_secrets_file_is_ignored_by_git():
    result = subprocess.run(
        ["git", "check-ignore", "-q", "var/dev-secrets.json"], cwd=ROOT, capture_output=True, timeout=30
    )
    assert result.returncode == 0
