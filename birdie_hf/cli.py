"""Command-line helpers shared by the recipes: one-line errors for bad input, and YAML configs.

Every recipe runs its `main` through [`run_recipe`]: an exception that reports bad input (a wrong value, a missing or
malformed file, no Hub access) ends the run with a single `error: <message>` line on stderr and exit status 2, as
`argparse` does for a malformed command line. Pass `--traceback` (or set `BIRDIE_TRACEBACK=1`) to get the full
traceback instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import reprlib
import sys
import types
import typing
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional, TypeVar

import yaml

from ._compat import escape_percent_signs_in_help
from .hub_io import HubAccessError
from .runs.checkpoints import last_complete_checkpoint


T = TypeVar("T")

#: Command-line flag that shows the full traceback of an error instead of the one-line message.
TRACEBACK_FLAG = "--traceback"
#: Environment variable with the same effect as [`TRACEBACK_FLAG`] (`1`, `true` or `yes`).
TRACEBACK_ENV = "BIRDIE_TRACEBACK"
#: Exit status of a run stopped by bad input (the status `argparse` uses for a malformed command line).
USER_ERROR_EXIT_CODE = 2
#: Help text of the `--traceback` flag every recipe declares.
TRACEBACK_HELP = f"on an error, print the full traceback instead of one `error:` line (or set {TRACEBACK_ENV}=1)"


#: Exit status of a run stopped with Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT_CODE = 130


class RecipeInterrupted(KeyboardInterrupt):
    """Ctrl-C during a recipe, with what the user can do next (e.g. which checkpoint resumes the run)."""


class RecipeError(ValueError):
    """Bad input a recipe detected itself (a missing file, an unreadable `--config`, arguments that contradict each
    other). Its message names the argument, file or key and says what to change."""


#: Exceptions that report bad input rather than a bug: the library's `ValueError`s (`ObjectiveConfigError`,
#: `GenomeDataError`, the checks of `BirdieTrainingArguments`, ...), files that cannot be read (`OSError`, which
#: transformers also raises for a checkpoint it cannot find) and [`HubAccessError`].
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, HubAccessError)


def parse_checkpoint_pairs(pairs: Sequence[str], flag: str = "--checkpoints") -> dict[str, str]:
    """`["name=path", "arm@seed=path", ...]` -> `{name: path}`, in order.

    Raises:
        [`RecipeError`]: an entry is not `name=path`, or a name is given twice (the second would replace the first).
    """
    checkpoints: dict[str, str] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise RecipeError(f"{flag} entry {pair!r} is not name=path (or arm@seed=path).")
        if name in checkpoints:
            raise RecipeError(f"{flag} names {name!r} twice; give each checkpoint its own name or @seed.")
        checkpoints[name] = path
    return checkpoints


def wants_traceback(argv: Sequence[str]) -> bool:
    """Whether `argv` holds `--traceback` (alone, `--traceback true` or `--traceback=true`) or `BIRDIE_TRACEBACK` is
    set, i.e. whether errors should keep their full traceback."""
    truthy = ("1", "true", "yes", "on")
    if os.environ.get(TRACEBACK_ENV, "").strip().lower() in truthy:
        return True
    argv = list(argv)
    for i, token in enumerate(argv):
        if token.startswith(f"{TRACEBACK_FLAG}="):
            return token.split("=", 1)[1].strip().lower() in truthy
        if token == TRACEBACK_FLAG:
            following = argv[i + 1].strip().lower() if i + 1 < len(argv) else ""
            return following not in ("0", "false", "no", "off")
    return False


def strip_traceback_flag(argv: Sequence[str]) -> list[str]:
    """`argv` without `--traceback` in any of the forms [`wants_traceback`] reads (alone, `--traceback true`,
    `--traceback=true`): [`run_recipe`] reads it, the recipe's own parser need not know it."""
    argv, kept, skip = list(argv), [], False
    for i, token in enumerate(argv):
        if skip:
            skip = False
            continue
        if token.startswith(f"{TRACEBACK_FLAG}="):
            continue
        if token == TRACEBACK_FLAG:
            following = argv[i + 1].strip().lower() if i + 1 < len(argv) else ""
            skip = following in ("1", "true", "yes", "on", "0", "false", "no", "off")
            continue
        kept.append(token)
    return kept


def user_error_message(error: BaseException) -> str:
    """The message of `error` on one line (`OSError`s from `open` read `No such file or directory: 'x.yaml'`)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        message = f"{error.strerror}: {os.fspath(error.filename)!r}"
    else:
        message = str(error).strip() or type(error).__name__
    if isinstance(error, KeyError) and message.startswith(("'", '"')):
        message = message[1:-1]
    message = " ".join(line.strip() for line in message.splitlines() if line.strip())
    return message[len("error: ") :] if message.startswith("error: ") else message


def run_recipe(entry: Callable[[list[str]], T], argv: Optional[Sequence[str]] = None) -> T:
    """Run a recipe's `entry(argv)`; bad input ends the process with one `error: <message>` line and exit status 2.

    Args:
        entry (`Callable[[list[str]], T]`):
            Parses the command line it is given and runs the recipe, e.g. `lambda argv: main(parse_args(argv))`.
        argv (`Sequence[str]`, *optional*):
            The command line without the program name. Defaults to `sys.argv[1:]`.

    Returns:
        Whatever `entry` returns.

    Raises:
        `SystemExit`: with status 130 after one `interrupted: ...` line on Ctrl-C ([`RecipeInterrupted`] carries what
        to do next), and with status 2 after printing the message of an exception of [`USER_ERRORS`], unless
        `--traceback` is in `argv` or `BIRDIE_TRACEBACK=1` (the exception then propagates unchanged). Other
        exceptions (bugs, out-of-memory errors) always propagate with their traceback.

    Example:

    ```python
    >>> from birdie_hf.cli import RecipeError, run_recipe
    >>> def entry(argv):
    ...     raise RecipeError(f"--genomes: file not found: {argv[1]!r}")
    >>> run_recipe(entry, ["--genomes", "missing.fa"])  # prints "error: --genomes: file not found: 'missing.fa'"
    Traceback (most recent call last):
    SystemExit: 2

    ```
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return entry(argv)
    except KeyboardInterrupt as interrupt:
        if wants_traceback(argv):
            raise
        detail = str(interrupt).strip()
        print(f"interrupted{': ' + detail if detail else ''}", file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT_CODE) from None
    except USER_ERRORS as error:
        if wants_traceback(argv):
            raise
        print(f"error: {user_error_message(error)}", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT_CODE) from None
    finally:
        end_distributed()


def end_distributed() -> None:
    """Destroy the default process group, if `accelerate launch` started one. A process that exits with the group
    still alive can abort in teardown ("terminate called without an active exception", seen with gloo on CPU)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# -- YAML configs -----------------------------------------------------------------------------------------------------
CONFIG_FLAG = "--config"


def pop_config_flag(argv: Sequence[str]) -> tuple[Optional[str], list[str]]:
    """Split `--config PATH` (or `--config=PATH`) off a command line.

    Returns:
        `tuple[Optional[str], list[str]]`: the path (`None` without `--config`) and the remaining arguments.

    Raises:
        [`RecipeError`]: `--config` has no value, or is given twice.
    """
    argv, rest, path = list(argv), [], None
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == CONFIG_FLAG or token.startswith(f"{CONFIG_FLAG}="):
            if path is not None:
                raise RecipeError(f"{CONFIG_FLAG} is given twice ({path!r} and more); pass a single YAML file.")
            if "=" in token:
                value, i = token.split("=", 1)[1], i + 1
            else:
                value = argv[i + 1] if i + 1 < len(argv) else ""
                i += 2
            if not value or value.startswith("--"):
                raise RecipeError(f"{CONFIG_FLAG} needs the path of a YAML file, e.g. `{CONFIG_FLAG} my_run.yaml`.")
            path = value
            continue
        rest.append(token)
        i += 1
    return path, rest


#: `typing.Union` and, on Python >= 3.10, the type of `X | Y` annotations.
_UNION_TYPES = (typing.Union, getattr(types, "UnionType", typing.Union))


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """`(inner type, accepts None)` of `Optional[X]` / `X | None`; unions of several types come back unchanged."""
    if typing.get_origin(annotation) in _UNION_TYPES:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0], True
        return annotation, type(None) in typing.get_args(annotation)
    return annotation, False


def _field_types(dataclass_types: Sequence[type]) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for dataclass_type in dataclass_types:
        try:
            resolved = typing.get_type_hints(dataclass_type)
        except Exception:  # an annotation that cannot be resolved is simply not checked
            resolved = {}
        for f in dataclasses.fields(dataclass_type):
            if f.init:
                hints[f.name] = resolved.get(f.name, Any)
    return hints


#: About the longest value shown whole in an error message; a longer one is cut.
SHOWN_CHARACTERS = 80
#: Keys a config may not set to null although their field allows None (`output_dir: null` would write the run into
#: ./trainer_output, transformers' fallback).
NOT_NULL = ("output_dir",)


def shown(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """`repr(value)` for an error message, at most about `limit` characters (a bad value may be megabytes long;
    strings are cut in the middle and containers abbreviated before anything is turned into text).

    >>> shown("A" * 200, limit=20)
    "'AAAAAAA...AAAAAAAA'"
    """
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict, short.maxlevel = limit, limit, 8, 8, 3
    text = short.repr(value)
    return text if len(text) <= 2 * limit else text[: 2 * limit] + "..."


class _ConfigLoader(yaml.SafeLoader):
    """YAML for recipe configs: a key given twice is refused (YAML keeps the last silently), and so are aliases
    (`*name`): a config has no use for them, and nested ones expand exponentially (a 300-byte file to gigabytes)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not supported in a recipe config", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {shown(key)} is not a name", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {shown(key)} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _normalize_value(key: str, value: Any, annotation: Any, path: str) -> Any:
    """A YAML value fitted to its field: a single item where a list is expected becomes a one-item list; a list or
    mapping where a single number/flag/string is expected, or a value of the wrong kind, is refused."""
    inner, optional = _unwrap_optional(annotation)
    if value is None:
        if (optional or inner is Any) and key not in NOT_NULL:
            return value
        raise RecipeError(
            f"{CONFIG_FLAG}: key {key!r} in {path!r} cannot be null (it takes a value); remove the key to use the "
            "default."
        )
    if typing.get_origin(inner) is list or inner is list:
        items = value if isinstance(value, list) else [value]
        item_type = (typing.get_args(inner) or (Any,))[0]
        if item_type in (int, float):
            for item in items:
                if (
                    isinstance(item, bool)
                    or not isinstance(item, (int, float))
                    or (item_type is int and not isinstance(item, int))
                ):
                    kind = "integers" if item_type is int else "numbers"
                    raise RecipeError(
                        f"{CONFIG_FLAG}: key {key!r} in {path!r} takes a list of {kind}, got {shown(value)}."
                    )
        return items
    if inner in (int, float, bool, str):
        kinds = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        if isinstance(value, str):
            if inner in (int, float):  # YAML reads `1e3` and `fast` as strings: check them here, not in argparse
                try:
                    inner(value)
                except ValueError:
                    hint = ""
                    if inner is int:
                        try:
                            number = float(value)
                            hint = f" (write {int(number)})" if number.is_integer() else ""
                        except ValueError:
                            pass
                    raise RecipeError(
                        f"{CONFIG_FLAG}: key {key!r} in {path!r} takes {kinds[inner]}, got {shown(value)}{hint}."
                    ) from None
            return value  # argparse converts (and checks) string defaults with the field's type
        ok = {
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            bool: isinstance(value, bool),
            str: isinstance(value, (int, float)) and not isinstance(value, bool),
        }[inner]
        if not ok:
            raise RecipeError(
                f"{CONFIG_FLAG}: key {key!r} in {path!r} takes {kinds[inner]}"
                f"{' (or null)' if optional else ''}, got {shown(value)}."
            )
        return str(value) if inner is str else value
    return value


def load_config_file(path: str, dataclass_types: Sequence[type]) -> dict[str, Any]:
    """Read a YAML config of recipe arguments: a mapping from argument names (the fields of `dataclass_types`) to
    values. A single value where the field takes a list (`genomes: a.fa`, `objectives: infilling`) is read as a
    one-item list.

    Args:
        path (`str`): the YAML file.
        dataclass_types (`Sequence[type]`): the argument dataclasses whose fields the file may set.

    Returns:
        `dict[str, Any]`: the arguments, ready for `HfArgumentParser.set_defaults`.

    Raises:
        [`RecipeError`]: the file is missing or not valid YAML, its top level is not a mapping, it has keys no
        argument has, or a value has the wrong shape (e.g. a list for `max_steps`). The message names the file and
        the key.
    """
    if not os.path.exists(path):
        raise RecipeError(f"{CONFIG_FLAG}: file not found: {path!r}")
    if os.path.isdir(path):
        raise RecipeError(f"{CONFIG_FLAG}: {path!r} is a folder; pass a YAML file.")
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.load(handle, Loader=_ConfigLoader)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise RecipeError(f"{CONFIG_FLAG}: {path!r} is not valid YAML{line}: {problem}.") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{CONFIG_FLAG}: {path!r} is not a UTF-8 text file.") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise RecipeError(
            f"{CONFIG_FLAG}: {path!r} must hold a mapping of argument names to values (e.g. `max_steps: 100`), got a "
            f"{type(loaded).__name__} at the top level."
        )
    hints = _field_types(dataclass_types)
    unknown = sorted(shown(str(key), 40) for key in loaded if key not in hints)
    if unknown:
        raise RecipeError(
            f"{CONFIG_FLAG}: unknown keys in {path!r}: {unknown}; every key must be an argument of the "
            "recipe (see --help)."
        )
    return {key: _normalize_value(key, value, hints[key], path) for key, value in loaded.items()}


def _short_usage_errors(parser) -> None:
    """Make `parser` report a bad flag in one line (`prog: error: ...`, exit 2) instead of after its whole usage
    string, which for a recipe with every `TrainingArguments` flag is 150 lines."""

    def error(message: str):
        parser.exit(USER_ERROR_EXIT_CODE, f"{parser.prog}: error: {message} (see --help)\n")

    parser.error = error


def _preset_name(argv: Sequence[str], config: dict[str, Any]) -> Optional[str]:
    """The preset named by `--preset NAME` / `--preset=NAME` on the command line, else by the config's `preset`."""
    for i, arg in enumerate(argv):
        if arg == "--preset" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--preset="):
            return arg.split("=", 1)[1]
    return config.get("preset")


def parse_args_with_config(
    parser,
    argv: Sequence[str],
    defaults: Optional[dict[str, Any]] = None,
    alternatives: Optional[dict[str, str]] = None,
    presets: Optional[dict[str, dict[str, Any]]] = None,
) -> tuple:
    """Parse `argv` with an `HfArgumentParser`, taking defaults from `defaults`, then from a `--config` YAML file (see
    [`load_config_file`]); flags given on the command line win over all of them. A named preset (`--preset NAME` or
    a `preset:` key) is checked against `presets` here, so a misspelt name is one error line; its values are applied
    by the arguments themselves (`BirdieTrainingArguments` fills every preset setting left unset from it).

    `alternatives` maps an option to the one it replaces (`{"max_tokens": "max_steps"}`): when the first is given
    (command line or YAML) and the second is not, the second's entry in `defaults` is dropped.

    Returns:
        `tuple`: one instance per dataclass of `parser`.
    """
    _short_usage_errors(parser)
    escape_percent_signs_in_help(parser)
    path, argv = pop_config_flag(argv)
    merged = dict(defaults or {})
    given = {arg[2:].split("=", 1)[0].replace("-", "_") for arg in argv if arg.startswith("--")}  # --max-tokens too
    config = load_config_file(path, parser.dataclass_types) if path is not None else {}
    preset = _preset_name(argv, config) if presets else None
    if preset is not None and preset not in presets:
        raise RecipeError(f"--preset: unknown preset {preset!r}; choose one of {sorted(presets)}.")
    merged.update(config)
    given |= set(config)
    for option, replaced in (alternatives or {}).items():
        if option in given and replaced not in given:
            merged.pop(replaced, None)
    parser.set_defaults(**merged)
    # A parser may declare `--config` for its --help; it is consumed above, so only the dataclasses are returned.
    return tuple(parser.parse_args_into_dataclasses(args=argv))[: len(parser.dataclass_types)]


def group_dataclass_options(parser, dataclass_type, inherited_from, title: str) -> None:
    """`--help` display only: the options `dataclass_type` adds to `inherited_from` (e.g. `BirdieTrainingArguments`
    over `TrainingArguments`) get their own group titled `title`, listed right after the recipe's own options instead
    of among the ~200 inherited ones, which come last. Parsing is unchanged."""
    inherited = {f.name for f in dataclasses.fields(inherited_from)}
    added = {f.name for f in dataclasses.fields(dataclass_type) if f.name not in inherited}
    group = parser.add_argument_group(title)
    for source in parser._action_groups:
        if source is group:
            continue
        moved = [action for action in source._group_actions if action.dest in added]
        for action in moved:
            source._group_actions.remove(action)
            group._group_actions.append(action)
    parser._action_groups.remove(group)
    parser._action_groups.remove(parser._optionals)
    parser._action_groups += [group, parser._optionals]
    parser._optionals.title = (
        f"{inherited_from.__module__.split('.')[0]}.{inherited_from.__name__} options (and --help, --config)"
    )


@contextlib.contextmanager
def explain_stopped_training(output_dir: str, step: Callable[[], int]) -> Iterator[None]:
    """Turn a run stopped by a full disk or by Ctrl-C into one line that says at which step (`step()`) and which
    checkpoint of `output_dir` resumes it: [`RecipeError`] for a full disk (`OSError` ENOSPC from Python's writes,
    torch.save's "failed writing file" `RuntimeError`), [`RecipeInterrupted`] for Ctrl-C. Anything else passes."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        if not (getattr(error, "errno", None) == errno.ENOSPC or "failed writing file" in str(error)):
            raise
        checkpoint = last_complete_checkpoint(output_dir)
        raise RecipeError(
            f"could not write to {output_dir!r} at step {step()} (no space left on the device? "
            f"{str(error).splitlines()[0][:120]}); free space, then "
            + (
                f"resume from {checkpoint} with --resume_from_checkpoint last (and the same settings)."
                if checkpoint
                else "rerun: no checkpoint was saved yet."
            )
        ) from None
    except KeyboardInterrupt:
        checkpoint = last_complete_checkpoint(output_dir)
        raise RecipeInterrupted(
            f"stopped at step {step()}; "
            + (
                f"resume from {checkpoint} with --resume_from_checkpoint last (and the same settings)."
                if checkpoint
                else "no checkpoint was saved yet, so a rerun starts over."
            )
        ) from None
