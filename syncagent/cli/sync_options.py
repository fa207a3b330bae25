"""The parameters of `syncagent sync`, declared once and without click.

Two readers share this table: sync_cmd builds the click command from it
(its `--help`, its error messages, the path every other command takes),
and fast_parse reads a plain `syncagent sync ...` with it without
importing click at all (click's import is a seventh of a no-op run).
A parameter is described by what it is, never by how either reader
handles it, so the two cannot drift apart: a parity test runs both over
argv generated from this table.
"""

from __future__ import annotations

# kinds of value
FLAG = "flag"       # --force: True when given, else False
COUNT = "count"     # -v: how many times it is given
CHOICE = "choice"   # one of `choices`, exactly as spelled
FLOAT = "float"     # a number within [low, high] (the bounds are closed)
PATH = "path"       # a folder path: it need not exist, but must not be a file, and must be readable if it exists
TEXT = "text"       # any string

VALUE_KINDS = (CHOICE, FLOAT, PATH, TEXT)


class Param:
    """One parameter: a positional argument when `flags` is empty, else an option."""

    __slots__ = ("choices", "default", "envvar", "flags", "help", "high", "kind", "low", "multiple", "name",
                 "show_default")

    def __init__(self, name: str, flags: tuple[str, ...] = (), kind: str = TEXT, *,
                 default: str | float | None = None, envvar: str | None = None, help: str | None = None,
                 choices: tuple[str, ...] = (), low: float | None = None, high: float | None = None,
                 multiple: bool = False, show_default: bool = False) -> None:
        self.name = name                # the keyword the run receives
        self.flags = flags              # "-x" (one letter) and "--word" spellings
        self.kind = kind
        # the value when not given, as the run receives it: a flag's is False, a count's 0, a repeatable's ()
        self.default: str | float | tuple[()] | None = (False if kind == FLAG else 0 if kind == COUNT
                                                        else () if multiple else default)
        self.envvar = envvar            # read when the option is not given (an empty value counts as unset)
        self.help = help
        self.choices = choices
        self.low = low
        self.high = high
        self.multiple = multiple        # repeatable: the run receives a tuple of every value given, in order
        self.show_default = show_default

    @property
    def takes_value(self) -> bool:
        return self.kind in VALUE_KINDS

    @property
    def positional(self) -> bool:
        return not self.flags


SUMMARY = "Sync LOCAL with REMOTE once (a folder path, local:/path or NAME:path)."

SYNC_PARAMS: tuple[Param, ...] = (
    Param("local", kind=PATH),
    Param("remote"),
    Param("mode", ("--mode",), CHOICE, choices=("two-way", "upload", "download"), default="two-way",
          show_default=True, help="upload: the remote mirrors local; download: the reverse."),
    Param("dry_run", ("-n", "--dry-run"), FLAG, help="Show what would be done; change nothing."),
    Param("state_dir", ("--state-dir",), PATH, help="Where the state database lives (env SYNCAGENT_STATE_DIR)."),
    Param("force", ("--force",), FLAG,
          help="Override the safety guards (big delete, empty side, missing root)."),
    Param("max_delete", ("--max-delete",), FLOAT, low=0, high=100, default=50.0, show_default=True,
          help="Refuse a run that deletes more than this percent of a side's files."),
    Param("excludes", ("--exclude",), TEXT, multiple=True,
          help="gitignore-style pattern to leave alone (repeatable)."),
    Param("no_trash", ("--no-trash",), FLAG,
          help="Delete local files for good instead of moving them to the trash."),
    Param("delta", ("--delta",), CHOICE, choices=("auto", "always", "never"), default="auto", show_default=True,
          help="librsync delta transfers for changed files."),
    Param("verbose", ("-v", "--verbose"), COUNT),
    Param("quiet", ("-q", "--quiet"), FLAG),
    Param("log_format", ("--log-format",), CHOICE, choices=("console", "json")),
    Param("json_out", ("--json",), FLAG, help="Print a machine-readable summary."),
    Param("config_path", ("--config",), TEXT, envvar="SYNCAGENT_CONFIG",
          help="Config file with named remotes (env SYNCAGENT_CONFIG)."),
)
