"""The `aftershock` command line: run the operator, and show what experiments found."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aftershock import __version__

app = typer.Typer(help="aftershock: continuous chaos engineering for Kubernetes.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """aftershock: continuous chaos engineering for Kubernetes."""


@app.command()
def version() -> None:
    """Print the aftershock version."""
    typer.echo(__version__)


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Watch only this namespace (repeatable; globs allowed)."),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace (the default without -n).")
    ] = False,
    metrics_port: Annotated[int, typer.Option(help="Port for Prometheus /metrics (0 disables).")] = 8080,
    health_port: Annotated[int, typer.Option(help="Port for the liveness endpoint /healthz.")] = 8081,
    bind: Annotated[
        str, typer.Option(help="Address the metrics and health endpoints listen on.")
    ] = "0.0.0.0",
    operator_namespace: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_OPERATOR_NAMESPACE", help="The operator's own namespace; never a chaos target."
        ),
    ] = None,
    identity: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_OPERATOR_ID",
            help="Identity written into the runs this process claims (default: pod name, else host-pid).",
        ),
    ] = None,
    sweep_interval: Annotated[
        float,
        typer.Option(envvar="AFTERSHOCK_SWEEP_SECONDS", help="Seconds between sweeps for left-over faults."),
    ] = 10.0,
    webhook_port: Annotated[
        int,
        typer.Option(
            envvar="AFTERSHOCK_WEBHOOK_PORT", help="Serve the admission webhooks on this port (0: off)."
        ),
    ] = 0,
    webhook_host: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_WEBHOOK_HOST", help="Host or IP the API server uses to reach the webhook."
        ),
    ] = None,
    webhook_cert_dir: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_WEBHOOK_CERT_DIR",
            help="Directory with tls.crt, tls.key and ca.crt; default: a self-signed certificate.",
        ),
    ] = None,
    webhook_config: Annotated[
        str,
        typer.Option(
            envvar="AFTERSHOCK_WEBHOOK_CONFIG",
            help="Name of the webhook configurations the operator keeps up to date ('' when Helm manages them).",
        ),
    ] = "aftershock.dev",
    trust_unreviewed: Annotated[
        bool,
        typer.Option(
            "--trust-unreviewed",
            envvar="AFTERSHOCK_TRUST_UNREVIEWED",
            help="UNSAFE: run experiments whose author the admission webhook never checked (for an"
            " operator deliberately run without its webhook). Default: such runs end Errored.",
        ),
    ] = False,
    review_key_namespace: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_REVIEW_KEY_NAMESPACE",
            help="Namespace of the review-stamp key Secret (default: --operator-namespace, else the Lease's).",
        ),
    ] = None,
    default_policy_name: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_DEFAULT_POLICY_NAME",
            help="Name of the default ChaosPolicy this operator manages (with no file: delete the one it made).",
        ),
    ] = None,
    default_policy_file: Annotated[
        str | None,
        typer.Option(
            envvar="AFTERSHOCK_DEFAULT_POLICY_FILE",
            help="YAML ChaosPolicy spec to create as the default policy at start (needs --default-policy-name).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the operator until interrupted."""
    import kopf

    from aftershock import metrics

    if namespace and all_namespaces:
        raise typer.BadParameter("use either --namespace or --all-namespaces, not both")
    if default_policy_file:
        from pathlib import Path

        from aftershock.engines.default_policy import DefaultPolicyError, load_spec

        if not default_policy_name:
            raise typer.BadParameter("--default-policy-file needs --default-policy-name")
        try:
            load_spec(Path(default_policy_file))  # fail at once, not in a retry loop
        except DefaultPolicyError as exc:
            raise typer.BadParameter(str(exc)) from exc
        os.environ["AFTERSHOCK_DEFAULT_POLICY_FILE"] = default_policy_file
    if default_policy_name:
        os.environ["AFTERSHOCK_DEFAULT_POLICY_NAME"] = default_policy_name
    os.environ["AFTERSHOCK_NAMESPACES"] = "\n".join(namespace or [])
    if operator_namespace:
        os.environ["AFTERSHOCK_OPERATOR_NAMESPACE"] = operator_namespace
    if identity:
        os.environ["AFTERSHOCK_OPERATOR_ID"] = identity
    os.environ["AFTERSHOCK_SWEEP_SECONDS"] = str(sweep_interval)
    os.environ["AFTERSHOCK_WEBHOOK_PORT"] = str(webhook_port)
    os.environ["AFTERSHOCK_WEBHOOK_ADDR"] = bind
    os.environ["AFTERSHOCK_WEBHOOK_CONFIG"] = webhook_config
    os.environ["AFTERSHOCK_TRUST_UNREVIEWED"] = "true" if trust_unreviewed else ""
    if review_key_namespace:
        os.environ["AFTERSHOCK_REVIEW_KEY_NAMESPACE"] = review_key_namespace
    if webhook_host:
        os.environ["AFTERSHOCK_WEBHOOK_HOST"] = webhook_host
    if webhook_cert_dir:
        os.environ["AFTERSHOCK_WEBHOOK_CERT_DIR"] = webhook_cert_dir
    import aftershock.handlers
    from aftershock.handlers import kopf_namespaces

    kopf_namespaces.install()
    if webhook_port:
        import aftershock.handlers.admission  # noqa: F401  (registers the admission webhooks)
    kopf.configure(verbose=verbose)  # configures the root logger once (ours log through it)
    if not verbose:
        # kopf's per-object lines ("Handler ... succeeded") come for every watch event of every
        # object: thousands a minute at scale, formatted on the event loop. Its warnings and
        # errors still show; the journal logs every run transition.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if metrics_port:
        metrics.serve(metrics_port, bind)
    kopf.run(
        clusterwide=not namespace,
        namespaces=namespace or [],
        liveness_endpoint=f"http://{bind}:{health_port}/healthz",
        standalone=True,
    )


def _kube() -> Any:
    from aftershock.kube import Kube, load_client

    return Kube(load_client())


@app.command()
def status(
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Namespace of the experiments.")
    ] = "default",
    runs: Annotated[int, typer.Option(help="How many recent runs to show per experiment.")] = 5,
) -> None:
    """Show experiments, their recent runs, and the findings of each run."""
    kube = _kube()
    console = Console()
    experiments = kube.list_objects("ChaosExperiment", namespace)
    if not experiments:
        console.print(f"no ChaosExperiments in namespace {namespace}")
        raise typer.Exit(0)
    for exp in experiments:
        name = exp["metadata"]["name"]
        st = exp.get("status") or {}
        summary = st.get("summary") or {}
        rec = summary.get("recoverySeconds") or {}
        console.print(
            f"[bold]{name}[/bold]  runs={summary.get('runs', 0)} passed={summary.get('passed', 0)} "
            f"failed={summary.get('failed', 0)} errored={summary.get('errored', 0)} "
            f"worst={summary.get('worstSeverity', '-')} recovery p50={rec.get('p50', '-')}s "
            f"p95={rec.get('p95', '-')}s max={rec.get('max', '-')}s"
        )
        table = Table("run", "phase", "verdict", "severity", "recovery (s)", "findings / message")
        items = kube.list_objects("ChaosRun", namespace, label_selector=f"aftershock.dev/experiment={name}")
        items.sort(key=lambda r: r["metadata"]["name"])
        for item in items[-runs:]:
            rs = item.get("status") or {}
            findings = "; ".join(
                f"[{f['severity']}] {f['title']}: {f['detail']}" for f in rs.get("findings") or []
            )
            table.add_row(
                item["metadata"]["name"],
                rs.get("phase", "-"),
                rs.get("verdict", "-"),
                rs.get("severity", "-"),
                str(rs.get("recoverySeconds", "-")),
                findings or rs.get("message", ""),
            )
        console.print(table)


@app.command()
def trigger(
    experiment: Annotated[str, typer.Argument(help="Name of the ChaosExperiment to run now.")],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="Namespace of the experiment.")
    ] = "default",
) -> None:
    """Run an experiment now, outside its schedule (creates a ChaosRun for the current second)."""
    from aftershock.api.experiment import ChaosExperiment
    from aftershock.kube import NotFound, now
    from aftershock.scheduling.ticks import new_run

    kube = _kube()
    try:
        body = kube.get("ChaosExperiment", namespace, experiment)
    except NotFound:
        typer.echo(f"error: ChaosExperiment {experiment} not found in namespace {namespace}", err=True)
        raise typer.Exit(1) from None
    run = new_run(
        ChaosExperiment.from_body(body), namespace, now().replace(microsecond=0), {}, trigger="manual"
    )
    created = kube.create("ChaosRun", namespace, run)
    if created is None:
        typer.echo(f"error: run {run['metadata']['name']} already exists; try again in a second", err=True)
        raise typer.Exit(1)
    typer.echo(f"chaosrun.aftershock.dev/{run['metadata']['name']} created")


@app.command()
def plan(
    file: Annotated[
        Path | None,
        typer.Option("--filename", "-f", help="A ChaosExperiment manifest (YAML or JSON) to check."),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="Namespace (default: the manifest's, else default)."),
    ] = None,
    output: Annotated[
        str,
        typer.Option("--output", "-o", help="With -f: text or json. Without: a directory for the manifests."),
    ] = "text",
    probes: Annotated[bool, typer.Option(help="Evaluate the steady-state probes and the gate once.")] = True,
) -> None:
    """With -f: what a run of this experiment would do, creating nothing: admission's verdict (a
    server-side dry run with your identity), the targets it would choose now, and each probe's
    answer. Without -f: the chaos scenarios that would cover the namespace's failure-mode matrix,
    as ChaosExperiment manifests, each judged by a server-side dry run."""
    import json

    import yaml

    from aftershock.runs.plan import plan as make_plan

    if file is None:
        _scenarios(namespace or "default", None if output == "text" else Path(output))
        return

    try:
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}") from exc
    experiments = [d for d in docs if isinstance(d, dict) and d.get("kind") == "ChaosExperiment"]
    if len(experiments) != 1:
        raise typer.BadParameter(f"{file} must hold exactly one ChaosExperiment (found {len(experiments)})")
    body = experiments[0]
    ns = namespace or (body.get("metadata") or {}).get("namespace") or "default"
    try:
        result = make_plan(_kube(), body, ns, probes=probes)
    except ValueError as exc:
        typer.echo(f"error: invalid ChaosExperiment: {exc}", err=True)
        raise typer.Exit(1) from None
    if output == "json":
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        console = Console()
        console.print(
            f"[bold]{result.experiment}[/bold] in {result.namespace} (targets in {result.target_namespace})"
        )
        if result.admitted:
            console.print("admission: accepted (server-side dry run)")
        else:
            console.print(f"admission: [red]refused[/red]: {result.refusal}")
        for warning in result.warnings:
            console.print(f"  warning: {warning}")
        console.print(f"workloads: {', '.join(result.workloads) or '-'}; Ready pods: {result.candidates}")
        console.print(
            f"targets: {', '.join(result.targets) or '-'}"
            + (f" ({result.target_note})" if result.target_note else "")
        )
        if result.gate is not None:
            console.print(
                f"gate: {'open' if result.gate['ok'] else '[red]closed[/red]'}: {result.gate['answer']}"
            )
        if result.probes:
            table = Table("probe", "type", "result", "answer")
            for p in result.probes:
                table.add_row(p["name"], p["type"], p["result"], p["answer"])
            console.print(table)
            console.print("(probes were asked from this machine; the operator asks from inside the cluster)")
        console.print(f"would run now: {'yes' if result.would_run else 'no'}")
    raise typer.Exit(0 if result.would_run else 2)


def _scenarios(namespace: str, directory: Path | None) -> None:
    """`plan -n NS`: propose, have each judged (dry run), write or print the accepted ones."""
    import yaml
    from kubernetes.client.rest import ApiException

    from aftershock.core.selectors import to_label_selector
    from aftershock.engines.workloads import is_ready
    from aftershock.reports.planner import WorkloadInfo, propose

    kube = _kube()
    workloads = []
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for obj in kube.list_workloads(kind, namespace, ""):
            spec = obj.get("spec") or {}
            selector = spec.get("selector") or {}
            pods = kube.list_pods(namespace, to_label_selector(selector)) if selector else []
            nodes = frozenset(
                str(p["spec"].get("nodeName")) for p in pods if is_ready(p) and p["spec"].get("nodeName")
            )
            workloads.append(
                WorkloadInfo(
                    kind=kind,
                    name=obj["metadata"]["name"],
                    selector=selector,
                    pod_labels=((spec.get("template") or {}).get("metadata") or {}).get("labels") or {},
                    replicas=int(spec.get("replicas") or 1),
                    nodes=nodes,
                )
            )
    scenarios = propose(
        workloads, kube.list_services(namespace), kube.list_objects("ChaosExperiment", namespace)
    )
    typer.echo(f"chaos scenarios for namespace {namespace} (each judged by a server-side dry run):", err=True)
    accepted = []
    for scenario in scenarios:
        body = {**scenario.manifest, "metadata": {**scenario.manifest["metadata"], "namespace": namespace}}
        try:
            warning = kube.dry_run_create("ChaosExperiment", namespace, body)
            verdict = "accepted" + (f" (warning: {warning})" if warning else "")
            accepted.append(body)
        except ApiException as exc:
            try:
                verdict = "refused: " + str(json.loads(exc.body or "{}").get("message") or exc.reason)
            except ValueError:
                verdict = f"refused: {exc.status} {exc.reason}"
        typer.echo(f"  {body['metadata']['name']}  [{scenario.covers}]  {verdict}", err=True)
    if not scenarios:
        typer.echo("  none: the experiments already cover every scenario aftershock proposes", err=True)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        for body in accepted:
            (directory / f"{body['metadata']['name']}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
        typer.echo(f"wrote {len(accepted)} manifest(s) to {directory}", err=True)
    else:
        typer.echo(yaml.safe_dump_all(accepted, sort_keys=False), nl=False)


FORMATS = ("table", "markdown", "json", "html")


def _gather(kube: Any, namespaces: list[str] | None) -> tuple[list[Any], list[Any]]:
    scope = tuple(namespaces) if namespaces is not None else None
    return kube.list_in("ChaosExperiment", scope), kube.list_in("ChaosRun", scope)


def _targets(experiments: list[Any], runs: list[Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Row id → (target namespace, kind, selector) of every workload target the runs name."""
    from aftershock.reports.matrix import row_of

    found: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for obj in [*experiments, *runs]:
        spec = obj.get("spec") or {}
        if not spec.get("target") or (spec.get("fault") or {}).get("toxiproxy"):
            continue
        row_id, _, target_ns, _ = row_of(spec, obj["metadata"]["namespace"])
        target = spec["target"]
        found.setdefault(
            row_id, (target_ns, str(target.get("kind") or "Deployment"), target.get("selector") or {})
        )
    return found


def _live_design(
    kube: Any, report: dict[str, Any], targets: dict[str, tuple[str, str, dict[str, Any]]]
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Row labels from the workloads the selectors match now, and the recovery design's rules
    over those workloads and what the report found about them."""
    from aftershock.core import recommend as rules
    from aftershock.core.selectors import to_label_selector

    labels: dict[str, str] = {}
    design: list[dict[str, Any]] = []
    try:
        nodes = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in kube.list_nodes()}
    except Exception:  # nodes may not be readable: zones and nodes are then unknown
        nodes = {}
    by_row: dict[str, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        by_row.setdefault(finding["row"], []).append(finding)
    cells = {row["id"]: row["cells"] for row in report["rows"]}
    for row_id, (namespace, kind, selector) in sorted(targets.items()):
        if kind not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        try:
            workloads = kube.list_workloads(kind, namespace, to_label_selector(selector))
            pdbs = kube.list_pdbs(namespace) if workloads else []
        except Exception as exc:  # a namespace we may not read: the report still stands
            typer.echo(f"warning: cannot read {kind}s in {namespace}: {exc}", err=True)
            continue
        if workloads:
            labels[row_id] = f"{kind} {namespace}/" + ", ".join(w["metadata"]["name"] for w in workloads)
        row_cells = cells.get(row_id, {})
        p95s = [c["recovery"]["p95"] for c in row_cells.values() if c["recovery"]["p95"] is not None]
        objectives = [c["recovery"]["objective"] for c in row_cells.values() if c["recovery"]["objective"]]
        evidence = rules.Evidence(
            recovery_p95=max(p95s) if p95s else None,
            objective=min(objectives) if objectives else None,
            runs=sum(c["runs"] for c in row_cells.values()),
            findings=[
                rules.FindingFacts(severity=f["severity"], title=f["title"], detail=f["detail"], run=f["run"])
                for f in by_row.get(row_id, [])
            ],
        )
        for workload in workloads:
            pod_selector = to_label_selector((workload.get("spec") or {}).get("selector") or {})
            pods = kube.list_pods(namespace, pod_selector)
            facts = rules.facts_from_objects({**workload, "kind": kind}, pods, pdbs, nodes)
            design += [r.to_json() for r in rules.recommend(facts, evidence)]
    return labels, design


def _since(text: str | None) -> Any:
    """A window such as 7d, 24h or 90m (None: all time)."""
    import datetime as dt

    from aftershock.api.durations import parse_duration

    if text is None:
        return None
    try:
        if text.endswith("d") and text[:-1].isdigit():
            return dt.timedelta(days=int(text[:-1]))
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(f"--since {text}: {exc} (e.g. 7d, 24h, 30m)") from exc


def _scope(namespace: str | None, all_namespaces: bool) -> list[str] | None:
    if all_namespaces:
        return None
    return [namespace or "default"]


@app.command()
def report(
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace of the experiments.")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    since: Annotated[
        str | None, typer.Option(help="Only runs finished in this window, e.g. 7d, 24h (default: all time).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, markdown, json or html.")] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
    design: Annotated[
        bool,
        typer.Option(
            "--recommend/--no-recommend", help="Include the recovery design (reads the live workloads)."
        ),
    ] = True,
) -> None:
    """The failure-mode matrix: targets x fault kinds, with pass rate, worst severity, recovery
    p50/p95 against the objective, trend and findings; and the recovery design."""
    import datetime as dt
    import json

    from aftershock.reports import matrix, text

    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    window = _since(since)
    namespaces = _scope(namespace, all_namespaces)
    kube = _kube()
    experiments, runs = _gather(kube, namespaces)
    now = dt.datetime.now(dt.UTC)
    first = matrix.build(experiments, runs, now=now, since=window, namespaces=namespaces)
    labels, rules = _live_design(kube, first, _targets(experiments, runs)) if design else ({}, [])
    doc = matrix.build(
        experiments, runs, now=now, since=window, namespaces=namespaces, labels=labels, recommendations=rules
    )
    if fmt == "json":
        rendered = json.dumps(doc, indent=2) + "\n"
    elif fmt == "markdown":
        rendered = text.markdown(doc)
    elif fmt == "html":
        from aftershock.reports.html import render_html

        rendered = render_html(doc)
    else:
        console = Console(record=output is not None, width=200 if output is not None else None)
        console.print(text.table(doc))
        rendered = console.export_text() if output is not None else ""
    if output is not None:
        output.write_text(rendered)
        typer.echo(f"wrote {output}")
    elif rendered:
        typer.echo(rendered, nl=False)


@app.command()
def recommend(
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace of the experiments.")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """The recovery design: rules over what the experiments found and the live workloads, each
    with its evidence and the manifest change. Exit 0 with nothing to recommend, 3 otherwise."""
    import datetime as dt
    import json

    from aftershock.reports import matrix

    namespaces = _scope(namespace, all_namespaces)
    kube = _kube()
    experiments, runs = _gather(kube, namespaces)
    doc = matrix.build(experiments, runs, now=dt.datetime.now(dt.UTC), namespaces=namespaces)
    _, rules = _live_design(kube, doc, _targets(experiments, runs))
    if output == "json":
        typer.echo(
            json.dumps(
                {"apiVersion": "aftershock.dev/recommendations/v1", "recommendations": rules}, indent=2
            )
        )
    else:
        console = Console()
        if not rules:
            console.print("nothing to recommend: every rule holds for the workloads the experiments target")
        for r in rules:
            console.print(f"[bold]{r['id']}[/bold] [{r['severity']}] {r['target']}: {r['title']}")
            console.print(f"  evidence: {r['evidence']}")
            console.print("  change:")
            for line in str(r["change"]).rstrip().splitlines():
                console.print(f"    {line}", markup=False, highlight=False)
    raise typer.Exit(3 if rules else 0)


export_app = typer.Typer(help="Export an experiment to another tool's format.", no_args_is_help=True)
import_app = typer.Typer(help="Import an experiment from another tool's format.", no_args_is_help=True)
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")


def _write(doc: Any, output: Path | None) -> None:
    """JSON on stdout, or to a file (YAML when its name ends in .yaml or .yml)."""
    import yaml

    if output is None:
        typer.echo(json.dumps(doc, indent=2))
        return
    text = (
        yaml.safe_dump(doc, sort_keys=False)
        if output.suffix in (".yaml", ".yml")
        else json.dumps(doc, indent=2) + "\n"
    )
    output.write_text(text)
    typer.echo(f"wrote {output}", err=True)


def _probe_selectors(kube: Any, body: dict[str, Any], namespace: str) -> dict[str, str]:
    """Kind/name → pod label selector of the workloads kubernetes probes name (readyAtLeast needs it)."""
    from aftershock.core.selectors import to_label_selector
    from aftershock.kube import NotFound

    spec = body.get("spec") or {}
    target_ns = (spec.get("target") or {}).get("namespace") or namespace
    found = {}
    for probe in (spec.get("steadyState") or {}).get("probes") or []:
        k8s = probe.get("kubernetes")
        if not k8s or k8s.get("readyAtLeast") is None:
            continue
        try:
            workload = kube.get_workload(k8s["kind"], target_ns, k8s["name"])
        except NotFound:
            continue
        found[f"{k8s['kind']}/{k8s['name']}"] = to_label_selector(
            (workload.get("spec") or {}).get("selector") or {}
        )
    return found


@export_app.command("chaostoolkit")
def export_chaostoolkit(
    experiment: Annotated[str, typer.Argument(help="Name of the ChaosExperiment.")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Its namespace.")] = "default",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (.json, .yaml).")
    ] = None,
) -> None:
    """A Chaos Toolkit experiment doing what this ChaosExperiment does (`chaos run` can run it).
    Faults without a Chaos Toolkit counterpart are refused with the list of what is missing."""
    from aftershock.kube import NotFound
    from aftershock.reports import chaostoolkit as ctk

    kube = _kube()
    try:
        body = kube.get("ChaosExperiment", namespace, experiment)
    except NotFound:
        typer.echo(f"error: ChaosExperiment {experiment} not found in namespace {namespace}", err=True)
        raise typer.Exit(1) from None
    try:
        doc = ctk.export(body, selectors=_probe_selectors(kube, body, namespace))
    except ctk.NotMappable as exc:
        typer.echo(
            f"error: ChaosExperiment {namespace}/{experiment} cannot be exported to Chaos Toolkit:", err=True
        )
        for item in exc.missing:
            typer.echo(f"  - {item}", err=True)
        raise typer.Exit(1) from None
    _write(doc, output)


@import_app.command("chaostoolkit")
def import_chaostoolkit(
    file: Annotated[Path, typer.Argument(help="A Chaos Toolkit experiment (JSON or YAML).")],
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace for the experiment.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Name for the experiment (default: from the file).")
    ] = None,
) -> None:
    """The ChaosExperiment a Chaos Toolkit experiment describes, as YAML for kubectl apply. Nothing
    in the file is run: activities that do not map (Python functions other than the mapped ones,
    processes) are refused by name."""
    import yaml

    from aftershock.reports import chaostoolkit as ctk

    try:
        doc = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}") from exc
    if not isinstance(doc, dict):
        raise typer.BadParameter(f"{file} is not a Chaos Toolkit experiment")
    try:
        body = ctk.import_experiment(doc, name=name, namespace=namespace)
    except ctk.NotMappable as exc:
        typer.echo(f"error: {file} cannot be imported (nothing in it was run):", err=True)
        for item in exc.missing:
            typer.echo(f"  - {item}", err=True)
        raise typer.Exit(1) from None
    typer.echo(yaml.safe_dump(body, sort_keys=False), nl=False)


@app.command()
def journal(
    run: Annotated[str, typer.Argument(help="Name of a finished ChaosRun.")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Its namespace.")] = "default",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file.")] = None,
) -> None:
    """A Chaos Toolkit journal of a finished ChaosRun (what `chaos run` writes), for Chaos Toolkit
    reporting and other journal readers."""
    from aftershock.kube import NotFound
    from aftershock.reports import chaostoolkit as ctk

    kube = _kube()
    try:
        body = kube.get("ChaosRun", namespace, run)
    except NotFound:
        typer.echo(f"error: ChaosRun {run} not found in namespace {namespace}", err=True)
        raise typer.Exit(1) from None
    phase = (body.get("status") or {}).get("phase")
    if phase not in ctk.STATUS:
        typer.echo(f"error: ChaosRun {run} has not finished (phase {phase or 'none'})", err=True)
        raise typer.Exit(1)
    spec = body.get("spec") or {}
    frozen = {k: v for k, v in spec.items() if k not in ("experiment", "scheduledTime")}
    as_experiment = {"metadata": {"name": spec.get("experiment"), "namespace": namespace}, "spec": frozen}
    try:
        experiment_doc = ctk.export(as_experiment, selectors=_probe_selectors(kube, as_experiment, namespace))
    except (ctk.NotMappable, ValueError) as exc:
        experiment_doc = ctk.fallback_experiment(body, getattr(exc, "missing", [str(exc)]))
    _write(ctk.journal(body, experiment_doc, version=__version__), output)


@app.command()
def release(
    deployment: Annotated[
        str | None,
        typer.Option(
            help="NAMESPACE/NAME of the operator's Deployment: it is scaled to 0 first, and the "
            "namespaces it watches (its --namespace flags) are the ones released."
        ),
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Release this namespace (repeatable; without --deployment)."),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Release every namespace (without --deployment).")
    ] = False,
    keep_namespace: Annotated[
        list[str] | None,
        typer.Option(help="A namespace the next operator watches: left as it is (repeatable; for upgrades)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the operator's pods to go.")] = 120,
    default_policy_name: Annotated[
        str | None,
        typer.Option(help="Also delete this default ChaosPolicy, if the operator created it (uninstall)."),
    ] = None,
) -> None:
    """Let go before uninstalling: stop the operator, abort active runs (reverting their faults) and
    remove aftershock's finalizer from experiments and runs, so that nothing is left stuck."""
    import logging

    from aftershock.core.watch_scope import explicit_namespaces, to_release, watched_by
    from aftershock.runs.release import ReleaseError
    from aftershock.runs.release import release as do_release

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    kube = _kube()
    target: tuple[str, str] | None = None
    if deployment:
        if namespace or all_namespaces:
            raise typer.BadParameter("--deployment reads the namespaces from the Deployment; omit -n/-A")
        ns, _, name = deployment.partition("/")
        if not ns or not name:
            raise typer.BadParameter("--deployment is NAMESPACE/NAME")
        target = (ns, name)
        live = kube.find_deployment(ns, name)
        if live is None:
            typer.echo(
                f"error: Deployment {deployment} not found, so it is unknown which namespaces its operator "
                "watched; release them with --namespace/--all-namespaces",
                err=True,
            )
            raise typer.Exit(1)
        containers = live["spec"]["template"]["spec"]["containers"]
        current = watched_by([a for c in containers for a in c.get("args") or []])
    elif namespace:
        current = explicit_namespaces(namespace)
        if current is None:
            raise typer.BadParameter("give plain namespace names to release (no globs)")
    elif all_namespaces:
        current = None
    else:
        raise typer.BadParameter("say what to release: --deployment, --namespace or --all-namespaces")
    scope = to_release(current, keep_namespace or ())
    try:
        report = do_release(
            kube,
            scope,
            deployment=target if not scope.nothing else None,
            stop_timeout=timeout,
            default_policy=default_policy_name,
        )
    except ReleaseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for item in report.aborted:
        typer.echo(f"aborted run {item}")
    for item in report.released:
        typer.echo(f"released {item}")
    if report.default_policy:
        typer.echo(f"default ChaosPolicy {default_policy_name}: {report.default_policy}")
    typer.echo(report.summary() if not scope.nothing else "nothing to release")


def main() -> None:
    app()
