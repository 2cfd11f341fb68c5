"""``python -m ncvx.examples NAME [--maxit N]``: solve a bundled example and print its certificate."""

from __future__ import annotations

import argparse
import sys

from . import EXAMPLES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ncvx.examples", description=__doc__)
    parser.add_argument("name", choices=sorted(EXAMPLES), nargs="?", default="rosenbrock")
    parser.add_argument("--maxit", type=int, default=None, help="override the iteration limit")
    args = parser.parse_args(argv)
    example = EXAMPLES[args.name]()
    overrides = {"print_level": 1}
    if args.maxit is not None:
        overrides["maxit"] = args.maxit
    soln = example.solve(**overrides)
    pick = getattr(soln, "best", soln.final)
    print()
    print(f"example {example.name} ({args.name}): f = {pick.f:.10g}", end="")
    if example.f_ref is not None:
        print(f"   reference f = {example.f_ref:.10g} ({example.notes})", end="")
    print()
    print(
        f"certificate: termination code {soln.termination_code} ({soln.status.name}), "
        f"stationarity {soln.stat_value:.3g}, violation {getattr(pick, 'tv', 0.0):.3g}"
    )
    if example.check is not None:
        msg = example.check(soln)
        if msg:
            print(f"check failed: {msg}")
            return 1
    return 0 if soln.termination_code in (0, 1, 2, 4, 6) else 1


if __name__ == "__main__":
    sys.exit(main())
