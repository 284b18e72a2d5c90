"""`devsim-tui profiles`: list, show, validate the profiles and print their JSON Schema."""

from __future__ import annotations

import argparse
import json
import shutil

from devsim_tui.errors import check_each


def _loader():
    """The loader, imported when a `profiles` action runs (it brings pydantic and the schema,
    which the CLI's start, and so the control room's first frame, must not wait for)."""
    from devsim_tui.config import loader

    return loader


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profiles",
        help="list, show and validate profiles",
        description="Work with profiles: the built-in ones and your own YAML files.",
    )
    actions = parser.add_subparsers(dest="profiles_action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="the built-in profiles")
    listing.set_defaults(func=_list)

    show = actions.add_parser("show", help="a profile fully resolved (extends merged), as YAML")
    show.add_argument("profile", metavar="NAME|PATH")
    show.add_argument("--k8s", action="store_true",
                      help="instead, the Kubernetes resources of its app tier (Argo Rollout and "
                      "AnalysisTemplate or Deployment, HPA, the predictive scaler's CRD and "
                      "resource), ready for kubectl apply")
    show.set_defaults(func=_show)

    check = actions.add_parser("validate", help="check profile files, reporting every problem")
    check.add_argument("paths", metavar="PATH", nargs="+")
    check.set_defaults(func=_validate)

    schema = actions.add_parser(
        "schema", help="JSON Schema of profile files, for editor completion"
    )
    schema.set_defaults(func=_schema)


def _one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _list(args: argparse.Namespace) -> int:
    profiles = [_loader().load_profile(name) for name in _loader().list_builtin()]
    name_width = max(len(p.name) for p in profiles)
    env_width = max(len(p.environment) for p in profiles)
    room = shutil.get_terminal_size().columns - name_width - env_width - 4
    for profile in profiles:
        print(
            f"{profile.name:<{name_width}}  {profile.environment:<{env_width}}  "
            f"{_one_line(profile.description, max(room, 40))}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    profile = _loader().load_profile(args.profile)
    if args.k8s:
        from devsim_tui.export import k8s

        print(k8s.dump(profile), end="")
        return 0
    print(_loader().dump_profile(profile), end="")
    return 0


def _validate(args: argparse.Namespace) -> int:
    # Every file is checked before failing, so one run reports all problems in all files.
    check_each(args.paths, _loader().load_profile, lambda path, profile: print(
        f"{path}: OK (profile {profile.name}, environment {profile.environment})"))
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(_loader().profile_json_schema(), indent=2))
    return 0
