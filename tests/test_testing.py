from mascope import Agent, Team
from mascope.testing import ScriptedModel, temporary_store


def test_the_testing_helpers_work_as_documented() -> None:
    with temporary_store() as store:
        model = ScriptedModel(["hello"])
        team = Team("t", [Agent("a", model=model)], store=store)
        assert team.run("greet").answer == "hello"
        model.assert_all_used()
        path = store.path
    assert path is not None and not path.exists()
