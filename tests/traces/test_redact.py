"""Secrets never reach the store, whatever field they arrive in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mascope.traces import MASK, Redactor, TraceStore, import_paths

OPENAI_KEY = "sk-proj-Zq8vX2mN4pL7rT1wY6uB3cD9eF0gH5jK"
ENV_TOKEN = "tok-9f8e7d6c5b4a39281706"
BEARER = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0cGF5bG9hZA.c2lnbmF0dXJlMTIzNDU2"
PASSWORD = "correct-horse-battery-staple"


def all_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def test_planted_secrets_are_absent_from_the_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", ENV_TOKEN)
    monkeypatch.setenv("DB_PASSWORD", PASSWORD)
    db = tmp_path / "r.db"
    with TraceStore(db) as store:
        rid = store.start_run(
            task=f"use key {OPENAI_KEY}",
            spec={"model": {"api_key": "plain-value-without-shape"}},
            metadata={"headers": {"Authorization": f"Bearer {BEARER}"}, "note": f"pw {PASSWORD}"},
        )
        store.append_step(rid, agent="a", content=f"my token is {ENV_TOKEN}")
        store.append_step(
            rid, agent="a", kind="tool_call", content="call http",
            data={"arguments": {"url": "https://x", "headers": f"Authorization: Bearer {BEARER}", "key": OPENAI_KEY}},
        )  # fmt: skip
        store.append_step(rid, agent="a", kind="error", error=f"401 for key {OPENAI_KEY}")
        store.add_annotations(
            rid,
            [
                {
                    "mode": "FM-1.1",
                    "present": True,
                    "annotator": "llm:x",
                    "rationale": f"saw {ENV_TOKEN}",
                }
            ],
        )
        store.add_attribution(
            rid, {"method": "a2p", "reason": f"leaked {PASSWORD}", "intervention": OPENAI_KEY}
        )
        store.finish_run(rid, status="failed", final_answer=f"done with {OPENAI_KEY}")
        steps = store.steps(rid)
        assert MASK in steps[0].content and MASK in steps[1].data["arguments"]["key"]
    raw = all_bytes(db)
    for secret in (OPENAI_KEY, ENV_TOKEN, BEARER, PASSWORD, "plain-value-without-shape"):
        assert secret.encode() not in raw, secret
    assert b"use key" in raw  # the rest of the text is kept


def test_imported_traces_are_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-5551234567")
    record = {
        "question": "q", "ground_truth": "a", "mistake_agent": "A", "mistake_step": "0",
        "mistake_reason": "used acme-5551234567",
        "history": [{"content": f"key={OPENAI_KEY} and acme-5551234567", "role": "user", "name": "A"}],
    }  # fmt: skip
    file = tmp_path / "1.json"
    file.write_text(json.dumps(record))
    db = tmp_path / "i.db"
    with TraceStore(db) as store:
        import_paths(store, "whowhen", [file])
    raw = all_bytes(db)
    assert OPENAI_KEY.encode() not in raw and b"acme-5551234567" not in raw


@pytest.mark.parametrize(
    "prose",
    [
        "a basic understanding of bearer instruments",
        "max_tokens=512 and input_tokens",
        "the token limit was reached after 4096 tokens",
        "sk-short",
    ],
)
def test_ordinary_text_is_left_alone(prose: str) -> None:
    assert Redactor({}).text(prose) == prose


def test_short_env_values_are_not_masked_everywhere() -> None:
    redactor = Redactor({"RETRY_TOKEN": "1", "X_KEY": "abc"})
    assert redactor.text("1 abc 1") == "1 abc 1"


@pytest.mark.parametrize(
    "text",
    [
        'login({"user": "alice", "password": "hunter2-secret"})',
        "login(user='alice', password='hunter2-secret')",
        '{\\"user\\": \\"alice\\", \\"password\\": \\"hunter2-secret\\"}',
        "connect(api_key=hunter2-secret, timeout=3)",
        "export DB_PASSWORD='hunter2-secret'",
        "PASSWORD=hunter2-secret ./deploy.sh",
        "mysql --password hunter2-secret -u root",
        "headers = {'X-Api-Key': 'hunter2-secret'}",
        "client_secret: hunter2-secret",
        "aws_secret_access_key = hunter2-secret",
        "postgresql://alice:hunter2-secret@db.internal/app",
        "Authorization: Basic hunter2-secret",
        'call({"token": "hunter2-secret',  # cut off mid-value, as long tool calls are
    ],
)
def test_secret_named_values_inside_free_text_are_masked(text: str) -> None:
    masked = Redactor({}).text(text)
    assert "hunter2" not in masked and MASK in masked, masked


@pytest.mark.parametrize(
    "code",
    [
        "API_KEY = 'YOUR_API_KEY'",
        "client = OpenAI(api_key=API_KEY)",
        "token = os.environ['GITHUB_TOKEN']",
        "password = getpass()",
        "def login(user, password=password):",
        'secret: "<your secret here>"',
        "if password == expected:",
        "the secret: patience",
    ],
)
def test_placeholders_and_code_references_are_not_secrets(code: str) -> None:
    assert Redactor({}).text(code) == code


_KEYS = ["password", "passwd", "api_key", "apiKey", "X-Api-Key", "client_secret", "DB_PASSWORD",
         "access_token", "aws_secret_access_key", "refresh-token", "private_key", "pwd"]  # fmt: skip
_FORMS = [
    '{{"{k}": "{v}"}}', "{{'{k}': '{v}'}}", '{k}="{v}"', "{k}='{v}'", "{k}={v}", "{k} = {v}",
    "export {k}={v}", "--{k} {v}", "--{k}={v}", "{k}: {v}", '\\"{k}\\": \\"{v}\\"',
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(_KEYS),
    form=st.sampled_from(_FORMS),
    value=st.from_regex(
        r"[A-Za-z][A-Za-z0-9]{2,12}[0-9][A-Za-z0-9!@#%^*+/=~\-]{2,16}", fullmatch=True
    ),
    before=st.text(max_size=20),
    after=st.sampled_from(["", " ", "\n", ", x=1", ") and more", "; echo done"]),
)
def test_a_secret_named_value_never_survives_in_any_common_form(
    key: str, form: str, value: str, before: str, after: str
) -> None:
    text = (before + " " if before else "") + form.format(k=key, v=value) + after
    masked = Redactor({}).text(text)
    assert value not in masked, masked
    assert Redactor({}).text(masked) == masked  # redacting twice changes nothing more


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("charge with sk_live_51HxYzAbCdEfGhIjKlMnOpQr now", "51HxYzAbCdEfGhIjKlMnOpQr"),
        ("restricted rk_test_51HxYzAbCdEfGhIjKlMnOpQr", "51HxYzAbCdEfGhIjKlMnOpQr"),
        ("webhook whsec_AbCdEfGhIjKlMnOpQrStUv", "AbCdEfGhIjKlMnOpQrStUv"),
        ("slack app xapp-1-A0123456-789-abcdef0123456789", "abcdef0123456789"),
        ("temporary AWS key ASIAIOSFODNN7QWERTYU", "IOSFODNN7QWERTYU"),
        ("oauth ya29.a0AfH6SMBx1234567890abcdefghijk", "a0AfH6SMBx1234567890"),
        ("gitlab glpat-AbCdEfGhIjKlMnOpQrStUv12", "AbCdEfGhIjKlMnOpQrStUv12"),
        ("npm npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "AbCdEfGhIjKlMnOpQrStUvWxYz"),
        ("mail SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123", "abcdefghijklmnopqrstuv"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAzq8vX2\n-----END RSA PRIVATE KEY-----",
         "MIIEpAIBAAKCAQEAzq8vX2"),
        ("key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA", "b3BlbnNzaC1rZXk"),
        ("redis://:p4ssw0rdZZ@cache.internal:6379/0", "p4ssw0rdZZ"),
        ("postgres://admin:pa@ss99word@db.example.com/app", "ss99word"),
    ],
)  # fmt: skip
def test_other_common_credential_shapes_are_masked(text: str, secret: str) -> None:
    masked = Redactor({}).text(text)
    assert secret not in masked and MASK in masked, masked


@pytest.mark.parametrize(
    "text",
    ["http://host:8080/x and mail a@b.c", "git@github.com:org/repo.git", "mailto:bob@x.com"],
)
def test_urls_without_credentials_are_left_alone(text: str) -> None:
    assert Redactor({}).text(text) == text


def test_a_secret_in_a_team_name_is_neither_stored_nor_printed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mascope.cli import app

    secret = "ghp_R8kLm2Nq4Wx6Yz1Ab3Cd5Ef7Gh9Ij0KlMnOp"
    team = tmp_path / "t.yaml"
    team.write_text(
        f'name: "deploy {secret}"\nagents:\n  - name: a\n    role: r\n'
        "topology: {kind: pipeline, stages: [a]}\n"
    )
    replies = tmp_path / "r.json"
    replies.write_text(json.dumps(["ANSWER: done"]))
    db = tmp_path / "s.db"
    runner = CliRunner()
    ran = runner.invoke(
        app, ["run", str(team), "--task", "x", "-m", f"scripted:{replies}", "--db", str(db)]
    )
    assert ran.exit_code == 0, ran.output
    listed = runner.invoke(app, ["runs", "list", "--team", f"deploy {secret}", "--db", str(db)])
    assert listed.exit_code == 0 and "deploy [REDACTED]" in listed.stdout  # found by its name
    assert secret not in ran.output + listed.output
    assert secret.encode() not in all_bytes(db)


def test_an_agent_named_like_a_credential_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    from mascope import Agent, Team
    from mascope.errors import ConfigError

    secret = "ghp_R8kLm2Nq4Wx6Yz1Ab3Cd5Ef7Gh9Ij0KlMnOp"
    with pytest.raises(ConfigError) as info:
        Team("t", [Agent(secret, fn=lambda ctx: "hi")], store=tmp_path / "s.db")
    assert "agents[0].name" in str(info.value) and secret not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_an_env_reference_under_a_secret_name_is_kept_but_a_value_is_masked() -> None:
    from mascope.traces import Redactor

    env = {"GITHUB_TOKEN": "${GITHUB_TOKEN}", "API_KEY": "sk-live-123456789", "X_KEY": "a${B}"}
    assert Redactor({}).value({"env": env}) == {
        "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}", "API_KEY": "[REDACTED]", "X_KEY": "[REDACTED]"}
    }


def test_a_string_is_masked_every_time_it_comes_back_and_memory_stays_bounded() -> None:
    # A run hands the redactor the same strings over and over; each is scanned
    # once and remembered, and what is remembered is bounded.
    secret = "sk-" + "a1B2c3D4" * 5
    redactor = Redactor(env={})
    text = f"the key is {secret}, use it"
    first = redactor.text(text)
    assert secret not in first
    for i in range(10_000):
        redactor.text(f"ordinary line {i}")
    assert redactor.text(text) == first
    assert len(redactor._seen) <= 4096
