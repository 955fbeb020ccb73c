"""The operator console in a real browser: what an operator does, end to end."""
from __future__ import annotations

import os
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path


NS = "console.browser"
EXPECT_MS = 30000


def set_editor(page, text: str) -> None:
    """Type into the CodeMirror editor as a user would paste (the textarea behind it is hidden)."""
    page.wait_for_selector(".CodeMirror")
    page.evaluate("text => document.querySelector('.CodeMirror').CodeMirror.setValue(text)", text)


def deploy(server, source: str) -> None:
    server.api("POST", "/flows", source) if not _exists(server, source) else None


def _exists(server, source: str) -> bool:
    flow_id = re.search(r"^id: (\S+)", source, re.M).group(1)
    found = server.api("GET", f"/flows/search?namespace={NS}&q={flow_id}")
    return any(r["id"] == flow_id for r in found["results"])


def flow_admin_pk(page, flow_id: str) -> str:
    page.goto(f"/admin/flows_app/flow/?q={flow_id}")
    href = page.locator(f"#result_list a:text-is('{flow_id}')").first.get_attribute("href")
    return re.search(r"/flow/(\d+)/change/", href).group(1)


TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED"}


def wait_state(page, state: str, timeout: float = EXPECT_MS) -> None:
    """Wait until the page shows ``state``; for a terminal one, until the page has reloaded itself
    on it (its actions are those of the end state)."""
    settled = "document.body.dataset.settled === '1' && " if state in TERMINAL else ""
    page.wait_for_function("s => { const e = document.getElementById('exec-state'); return " + settled
                           + "e && e.textContent.trim() === s }", arg=state, timeout=timeout)


def execution_id_of(page) -> str:
    return re.search(r"/execution/(\w+)/change/", page.url).group(1)


def test_login_shows_the_dashboard(context, server):
    page = context.new_page()
    page.goto("/admin/")
    assert page.locator("#dashboard").is_visible()
    assert page.locator("#count-running").is_visible()
    assert page.locator("text=View site").count() == 0
    page.close()


GREET = f"""id: greet
namespace: {NS}
inputs:
  - id: name
    type: STRING
  - id: times
    type: INT
    defaults: 2
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{{{ range(1, inputs.times) }}}}"
    tasks:
      - id: hello
        type: io.kestra.plugin.core.log.Log
        message: "hello {{{{ inputs.name }}}} #{{{{ taskrun.value }}}}"
"""


def test_editor_shows_a_validation_error_at_its_line_then_saves(page, server):
    page.goto("/admin/flows_app/flow/add/")
    broken = GREET.replace("        message:", "        mesage:")
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "mesage" in text)
    set_editor(page, broken)
    page.wait_for_selector(f"#editor-errors li[data-line='{line}']")
    assert page.locator(".cm-error-line").count() >= 1
    set_editor(page, GREET)
    page.wait_for_function("() => document.getElementById('editor-status').textContent === 'valid'")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert page.locator("#result_list a:text-is('greet')").count() == 1


def test_run_with_inputs_from_the_form(page, server):
    deploy(server, GREET)
    page.goto(f"/admin/flows_app/flow/{flow_admin_pk(page, 'greet')}/execute/")
    page.click("#execute-form input[type=submit]")  # name is required: the engine says so
    error = page.locator("[data-input='name'] .input-error")
    error.wait_for()
    assert "name" in error.text_content()
    page.fill("#input-name", "Ada")
    page.fill("#input-times", "3")
    page.click("#execute-form input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/flows_app/execution/\w+/change/"))
    wait_state(page, "SUCCESS")
    page.wait_for_selector("#logs .logline:has-text('hello Ada #3')")
    assert page.locator("tr.run[data-task='hello']").count() == 3
    assert "Ada" in page.locator("#exec-inputs").text_content()


SLOW_LOGS = f"""id: slowlogs
namespace: {NS}
tasks:
  - id: before
    type: io.kestra.plugin.core.log.Log
    message: first line
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT3S
  - id: later
    type: io.kestra.plugin.core.log.Log
    message: second line
"""


def test_logs_arrive_live(page, server):
    deploy(server, SLOW_LOGS)
    execution = server.api("POST", f"/executions/{NS}/slowlogs", b"", "application/json")
    page.goto(f"/admin/flows_app/execution/{execution['id']}/change/")
    page.wait_for_selector("#logs .logline:has-text('first line')")
    assert page.locator("#logs .logline:has-text('second line')").count() == 0  # not yet: it sleeps
    page.wait_for_selector("#logs .logline:has-text('second line')")  # appended without a reload
    wait_state(page, "SUCCESS")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 1000, f"the execution page is {width}px wide at 1,000 px"
    page.select_option("#log-task", "later")
    page.wait_for_function("() => document.querySelectorAll('#logs .logline').length === 1")


KILLABLE = f"""id: long
namespace: {NS}
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: should not run
"""


def test_kill_a_running_execution_stops_its_task(page, server):
    deploy(server, KILLABLE)
    execution = server.api("POST", f"/executions/{NS}/long", b"", "application/json")
    page.goto(f"/admin/flows_app/execution/{execution['id']}/change/")
    page.wait_for_selector("tr.run[data-task='nap']")
    wait_state(page, "RUNNING")
    page.click("button[value=kill]")
    wait_state(page, "KILLED")
    data = server.wait_state(execution["id"], {"KILLED"})
    runs = {r["taskId"]: r["state"]["current"] for r in data["taskRunList"]}
    assert runs == {"nap": "KILLED"}
    assert page.locator("tr.run[data-task='nap'] .state").text_content() == "KILLED"


FLAKY = f"""id: flaky
namespace: {NS}
tasks:
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{{{ kv('ready', errorOnMissing=false) is null }}}}"
    errorMessage: "the KV entry 'ready' is missing"
  - id: done
    type: io.kestra.plugin.core.log.Log
    message: ready now
"""


def test_restart_a_failed_execution(page, server):
    deploy(server, FLAKY)
    execution = server.api("POST", f"/executions/{NS}/flaky", b"", "application/json")
    page.goto(f"/admin/flows_app/execution/{execution['id']}/change/")
    wait_state(page, "FAILED")
    assert "the KV entry 'ready' is missing" in page.locator("pre.error").first.text_content()
    # the operator fixes the cause in the KV store (a STRING, typed as text), then restarts
    page.goto("/admin/storage_app/kventry/add/")
    page.fill("#id_namespace", NS)
    page.fill("#id_key", "ready")
    page.select_option("#id_type", "STRING")
    page.fill("#id_value", "yes")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    page.goto(f"/admin/flows_app/execution/{execution['id']}/change/")
    page.click("button[value=restart]")
    wait_state(page, "SUCCESS")
    page.wait_for_selector("#logs .logline:has-text('ready now')")
    assert execution_id_of(page) == execution["id"]  # same execution, restarted


PAUSED = f"""id: approval
namespace: {NS}
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
        description: Why it may go on
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "approved: {{{{ outputs.approve.onResume.reason }}}}"
"""


def test_resume_a_paused_execution_with_inputs(page, server):
    deploy(server, PAUSED)
    execution = server.api("POST", f"/executions/{NS}/approval", b"", "application/json")
    page.goto(f"/admin/flows_app/execution/{execution['id']}/change/")
    page.wait_for_selector("#resume-form")
    assert "Paused by its Pause task 'approve'" in page.locator("#why").text_content()
    page.fill("#input-reason", "checked by ops")
    page.click("#resume-form button[value=resume]")
    wait_state(page, "SUCCESS")
    page.wait_for_selector("#logs .logline:has-text('approved: checked by ops')")


TWO_STEPS = f"""id: twosteps
namespace: {NS}
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: "one"
  - id: second
    type: io.kestra.plugin.core.log.Log
    message: "second sees {{{{ outputs.first.value }}}}"
"""


def test_replay_from_a_task(page, server):
    deploy(server, TWO_STEPS)
    execution = server.api("POST", f"/executions/{NS}/twosteps", b"", "application/json")
    server.wait_state(execution["id"], {"SUCCESS"})
    page.goto(f"/admin/flows_app/execution/{execution['id']}/change/")
    second = page.locator("tr.run[data-task='second']").get_attribute("data-taskrun")
    page.select_option("form[action$='/action/replay/'] select[name=taskrun]", second)
    page.click("button[value=replay]")
    page.wait_for_url(lambda url: execution["id"] not in url and "/execution/" in url)
    wait_state(page, "SUCCESS")
    replayed = server.api("GET", f"/executions/{execution_id_of(page)}")
    assert replayed["originalId"] == execution["id"] or replayed["id"] != execution["id"]
    page.wait_for_selector("#logs .logline:has-text('second sees one')")
    # the evaluator renders against the replayed execution
    page.fill("#eval-expression", "{{ outputs.first.value ~ '!' }}")
    page.click("#eval-form button")
    page.wait_for_function("() => document.getElementById('eval-result').textContent === 'one!'")


def test_diff_and_restore_a_revision(page, server):
    source = f"id: revised\nnamespace: {NS}\ntasks:\n  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: first version\n"
    deploy(server, source)
    server.api("PUT", f"/flows/{NS}/revised", source.replace("first version", "second version"))
    pk = flow_admin_pk(page, "revised")
    page.goto(f"/admin/flows_app/flow/{pk}/revisions/?left=1&right=2")
    diff = page.locator("#diff").text_content().replace("\xa0", " ")
    assert "first version" in diff and "second version" in diff
    assert page.locator("#diff .diff_chg, #diff .diff_sub, #diff .diff_add").count() >= 1
    page.click("tr[data-revision='1'] button")
    page.wait_for_selector(".messagelist .success:has-text('restored as revision 3')")
    flow = server.api("GET", f"/flows/{NS}/revised?source=true")
    assert flow["revision"] == 3 and "first version" in flow["source"]


SCHEDULED = f"""id: hourly
namespace: {NS}
inputs:
  - id: who
    type: STRING
    defaults: nobody
tasks:
  - id: hi
    type: io.kestra.plugin.core.log.Log
    message: "backfilled for {{{{ inputs.who }}}} at {{{{ trigger.date }}}}"
triggers:
  - id: every-hour
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
"""


def test_backfill_a_schedule(page, server):
    deploy(server, SCHEDULED)
    page.goto("/admin/flows_app/triggerstate/?q=every-hour")
    page.click("#result_list a:text-is('every-hour')")
    assert page.locator("#next-dates li").count() == 10
    start = (datetime.now(timezone.utc) - timedelta(hours=3)).replace(minute=30, second=0, microsecond=0)
    end = start + timedelta(hours=2)
    page.fill("#bf-start", start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    page.fill("#bf-end", end.strftime("%Y-%m-%dT%H:%M:%SZ"))
    page.fill("#input-who", "ops")
    page.click("#backfill-form button")
    page.wait_for_selector(".messagelist .success:has-text('Backfill started')")
    deadline = time.monotonic() + 60
    while page.locator("#fired tr").count() < 2:  # the two hours between start and end
        assert time.monotonic() < deadline, "the backfill created no execution"
        time.sleep(0.5)
        page.reload()
    found = server.api("GET", f"/executions/search?namespace={NS}&flowId=hourly")
    assert found["total"] == 2
    ids = [r["id"] for r in found["results"]]
    for execution_id in ids:
        server.wait_state(execution_id, {"SUCCESS"})
    logs = server.api("GET", f"/logs/{ids[0]}")
    assert any("backfilled for ops" in entry["message"] for entry in logs)


def test_edit_a_namespace_file(page, server):
    page.goto("/admin/storage_app/namespacefile/add/")
    page.fill("#id_namespace", NS)
    page.fill("#id_path", "/scripts/hello.sh")
    set_editor(page, "echo one\n")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    set_editor(page, "echo two\n")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    import urllib.request

    from .conftest import basic_auth

    request = urllib.request.Request(server.url(f"/api/v1/main/namespaces/{NS}/files?path=/scripts/hello.sh"),
                                     headers={"Authorization": basic_auth()})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.read() == b"echo two\n"


SHOWCASE = f"""id: regional-load
namespace: {NS}
tasks:
  - id: extract
    type: io.kestra.plugin.core.log.Log
    message: extracting
  - id: regions
    type: io.kestra.plugin.core.flow.ForEach
    values: ["eu", "us", "asia"]
    concurrencyLimit: 0
    tasks:
      - id: fetch
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT0.5S
      - id: load
        type: io.kestra.plugin.core.log.Log
        message: "loaded {{{{ taskrun.value }}}}"
  - id: check
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
    errorMessage: "3 rows rejected in asia"
  - id: report
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: done with warnings
"""


def test_tree_of_a_loop_with_an_allowed_failure(page, server):
    deploy(server, SHOWCASE)
    execution = server.api("POST", f"/executions/{NS}/regional-load", b"", "application/json")
    page.goto(f"/admin/flows_app/execution/{execution['id']}/change/")
    wait_state(page, "WARNING")
    assert page.locator("tr.run[data-task='load']").count() == 3
    assert page.locator("tr.run[data-task='regions'] .value").count() == 0
    assert page.locator("tr.run[data-task='fetch'] .value").all_text_contents() == ["eu", "us", "asia"]
    assert "3 rows rejected in asia" in page.locator("pre.error").first.text_content()
    page.wait_for_selector("#logs .logline:has-text('done with warnings')")
    page.select_option("#log-level", "WARN")
    page.wait_for_function("() => [...document.querySelectorAll('#logs .logline')].every("
                           "l => ['ERROR', 'WARN'].includes(l.dataset.level))")
    shots = os.environ.get("CELESTRA_SCREENSHOTS")
    if shots:
        page.select_option("#log-level", "TRACE")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.wait_for_selector("#logs .logline:has-text('loaded eu')")
        page.screenshot(path=str(Path(shots) / "execution.png"), full_page=True)


def test_dashboard_screenshot_and_width(page, server):
    page.goto("/admin/")
    page.wait_for_selector("#dashboard")
    # usable at 1,000 px: nothing wider than the window
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 1000, f"the dashboard is {width}px wide"
    page.goto("/admin/flows_app/execution/")
    overflow = page.evaluate("() => { const r = document.querySelector('.results'); return r.scrollWidth - r.clientWidth }")
    assert overflow <= 2, f"the executions list overflows by {overflow}px at 1,000 px"
    page.goto("/admin/")
    shots = os.environ.get("CELESTRA_SCREENSHOTS")
    if shots:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(Path(shots) / "dashboard.png"), full_page=True)
