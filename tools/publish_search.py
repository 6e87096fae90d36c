"""Publish a search's trials into a version-controlled folder, or restore them from it.

    python tools/publish_search.py publish apphub/searches/latent50.yaml runs/searches/latent50 \\
        docs/searches/latent50 --command "pipeline-vae tune apphub/searches/latent50.yaml --out runs/searches/latent50"
    python tools/publish_search.py restore apphub/searches/latent50.yaml docs/searches/latent50 \\
        runs/searches/latent50      # then `pipeline-vae tune ... --out runs/searches/latent50` trains none of them

`publish` writes results.md/.csv/.json/.png, best.json and best.yaml, the trials' values and the finished trials'
records (JSON only: no weights); `restore` writes them back into a fresh OUT (pipeline_vae.search.publish).
"""
import sys


def main(argv=None) -> int:
    from publish_ablation import build_parser  # (tools/ is on the path of a script run from it)
    parser = build_parser(__doc__.splitlines()[0], "tune")
    args = parser.parse_args(argv)
    from pipeline_vae.ablation.spec import SpecError
    from pipeline_vae.search.publish import publish, restore
    from pipeline_vae.search.spec import load_search
    try:
        search = load_search(args.spec, check_runs=False)  # records are read, nothing trains
        if args.action == "publish":
            done = publish(search, args.out, args.dest, data=args.data,
                           command=args.command or f"pipeline-vae tune {args.spec} --out {args.out}")
            print(f"{args.dest}: {done} of {search.trials} trials published")
        else:
            print(f"{args.out}: {restore(search, args.dest, args.out, data=args.data)} trials restored")
    except (SpecError, ValueError, FileNotFoundError) as err:
        print(f"publish_search: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
