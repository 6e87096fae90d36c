"""Publish an ablation's finished trials into a version-controlled folder, or restore them from it.

    python tools/publish_ablation.py publish apphub/ablations/losses_latent50.yaml runs/ablations/losses_latent50 \\
        docs/ablations/losses_latent50 --command "pipeline-vae ablate apphub/ablations/losses_latent50.yaml"
    python tools/publish_ablation.py restore apphub/ablations/losses_latent50.yaml docs/ablations/losses_latent50 \\
        runs/ablations/losses_latent50      # then `pipeline-vae ablate ... --out runs/ablations/losses_latent50`

`publish` writes results.md/.csv/.json/.png of the trials finished so far (the caption says when it is partial);
`restore` writes their records back into a fresh OUT so the ablation skips them (pipeline_vae.ablation.publish).
"""
import argparse
import sys


def build_parser(description: str, command: str) -> argparse.ArgumentParser:
    """The publish/restore command line, shared with tools/publish_search.py (`command`: "ablate" or "tune")."""
    parser = argparse.ArgumentParser(description=description)
    sub = parser.add_subparsers(dest="action", required=True)
    pub = sub.add_parser("publish", help="write the reports of OUT's finished trials into DEST")
    pub.add_argument("spec")
    pub.add_argument("out")
    pub.add_argument("dest")
    pub.add_argument("--command", default="", help=f"the {command} command, quoted in the reports")
    res = sub.add_parser("restore", help="write DEST's published records back into OUT")
    res.add_argument("spec")
    res.add_argument("dest")
    res.add_argument("out")
    for p in (pub, res):
        p.add_argument("--data", default=None, help=f"the --data the {command} ran with, if any")
    return parser


def main(argv=None) -> int:
    parser = build_parser(__doc__.splitlines()[0], "ablate")
    args = parser.parse_args(argv)
    from pipeline_vae.ablation.publish import publish, restore
    from pipeline_vae.ablation.spec import SpecError, load_spec
    try:
        spec = load_spec(args.spec, check_runs=False)  # records are read, nothing trains: the data may be elsewhere
        if args.action == "publish":
            done = publish(spec, args.out, args.dest, command=args.command or f"pipeline-vae ablate {args.spec}",
                           data=args.data)
            print(f"{args.dest}: {done} of {len(spec.variants) * len(spec.seeds)} trials published")
        else:
            print(f"{args.out}: {restore(spec, args.dest, args.out, data=args.data)} records restored")
    except (SpecError, ValueError) as err:
        print(f"publish_ablation: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
