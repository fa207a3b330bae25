"""What a run may touch: the local scan, the remote listing and the base,
filtered down to the paths both sides can hold.

Left out (and never read as deletions, because their base rows go too):
ignored paths, links and special files, names the other side cannot hold
(not UTF-8, forbidden on the provider, too long, two names one
case-insensitive service or NFC comparison would merge), and remote names
that must not touch the disk. Names the other side cannot hold are
"unfit": reported by name, and the run exits 1.
"""

from __future__ import annotations

from syncagent.engine.records import Base, Entry
from syncagent.engine.report import Reporter
from syncagent.engine.scan import Scan
from syncagent.paths import IgnoreRules, nfc, validate_relpath
from syncagent.providers.base import Provider, RemoteEntry


class Views:
    """The three maps a plan is made from, what was left out of them (`hidden`)
    and the names one side cannot hold (`unfit`: path -> why). A plain class:
    a dataclass compiles its methods when every sync imports this module."""

    def __init__(self, local: dict[str, Entry], remote: dict[str, RemoteEntry], base: dict[str, Base],
                 hidden: set[str], unfit: dict[str, str]) -> None:
        self.local, self.remote, self.base = local, remote, base
        self.hidden, self.unfit = hidden, unfit


def build_views(local_scan: Scan, remote_list: list[RemoteEntry], remote_skipped: dict[str, str],
                base: dict[str, Base], rules: IgnoreRules, provider: Provider, reporter: Reporter) -> Views:
    unfit = dict(local_scan.unfit) | provider.unfit_names()
    for path, why in local_scan.skipped.items():
        reporter.warn(f"skipped ({why})", path)
    hidden: set[str] = set(local_scan.skipped) | local_scan.ignored
    skipped_both = set(local_scan.skipped)
    for path, why in remote_skipped.items():
        reporter.warn(f"skipped on the remote ({why})", path)
    hidden |= set(remote_skipped)
    skipped_both |= set(remote_skipped)
    remote = _remote_view(remote_list, rules, hidden, skipped_both, unfit, reporter)
    local = local_scan.entries
    if skipped_both or rules:
        probe = Scan(local_scan.root, skipped={p: "" for p in skipped_both}, ignored=set(hidden))
        local = {p: e for p, e in local.items() if not probe.is_skipped(p)}
        remote = {p: e for p, e in remote.items() if not probe.is_skipped(p)}
        base = {p: b for p, b in base.items() if not probe.is_skipped(p)
                and not (rules and rules.matches(p, b.kind == "dir"))}
    cannot = names_the_remote_cannot_hold(local, remote, base, provider, reporter)
    if cannot:
        unfit.update(cannot)
        hidden |= set(cannot)
        probe = Scan(local_scan.root, ignored=set(cannot))
        local = {p: e for p, e in local.items() if not probe.is_skipped(p)}
    return Views(local, remote, base, hidden, unfit)


def _remote_view(remote_list: list[RemoteEntry], rules: IgnoreRules, hidden: set[str], skipped_both: set[str],
                 unfit: dict[str, str], reporter: Reporter) -> dict[str, RemoteEntry]:
    remote: dict[str, RemoteEntry] = {}
    spelled: dict[str, str] = {}
    for e in remote_list:
        if not validate_relpath(e.path):
            reporter.warn("skipped a remote name that cannot be written here", e.path)
            hidden.add(e.path)
            continue
        if rules and rules.matches(e.path, e.kind == "dir"):
            hidden.add(e.path)
            continue
        key = nfc(e.path)
        first = spelled.setdefault(key, e.path)
        if first != e.path:
            # two spellings of one name (NFC and NFD): this disk would merge them
            why = "two remote names that differ only in Unicode normalization"
            reporter.warn(f"skipped ({why})", e.path)
            unfit[key] = why
            hidden.add(key)
            skipped_both.add(key)
            remote.pop(key, None)
            continue
        if key not in unfit:
            remote[key] = e if key == e.path else _renamed(e, key)
    return remote


def _renamed(e: RemoteEntry, path: str) -> RemoteEntry:
    """A remote entry keyed by its NFC path, keeping the service's spelling of its name."""
    return RemoteEntry(path, e.kind, e.size, e.mtime_ns, e.rev, e.hash, e.id, e.path.rpartition("/")[2])


def names_the_remote_cannot_hold(local: dict[str, Entry], remote: dict[str, RemoteEntry], base: dict[str, Base],
                                 provider: Provider, reporter: Reporter) -> dict[str, str]:
    """New local names the remote would refuse or confuse: `name_problem()`
    of the provider, or equal to another name but for case on a
    case-insensitive service. Skipped with a warning, never renamed."""
    unfit: dict[str, str] = {}
    for p in local:
        if p in base or p in remote:
            continue
        problem = provider.name_problem(p)
        if problem is not None:
            unfit[p] = problem
            reporter.warn(f"skipped: {problem}", p)
    if provider.capabilities.case_insensitive:
        owner: dict[str, str] = {}
        for p in sorted(set(base) | set(remote)) + sorted(p for p in local if p not in base and p not in remote):
            other = owner.setdefault(p.casefold(), p)
            if other != p and p in local and p not in base and p not in remote:
                unfit[p] = f"{provider.name} ignores case and already has {other}"
                reporter.warn(f"skipped: {unfit[p]}", p)
    return unfit
