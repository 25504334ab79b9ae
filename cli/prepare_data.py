"""`taxi-pipeline prepare-data`: the Chicago Taxi sample from the tfx wheel, written as spans."""

from cli.common import add_folder_flags, holding_output_folder
from config import folders
from config import pipeline as pipeline_config


@holding_output_folder
def _prepare_data(args) -> int:
    from inputs import layout, taxi_sample

    settings = folders.Settings.resolve(args.output_dir)
    rows_by_span = taxi_sample.write_spans(taxi_sample.sample_csv_path(), settings.prepared_sample_dir)
    print(
        f"Wrote {sum(rows_by_span.values())} rows of the Chicago Taxi sample as {len(rows_by_span)} spans under "
        f"{settings.prepared_sample_dir}:"
    )
    for span, rows in rows_by_span.items():
        print(f"  {pipeline_config.SPAN_FOLDER_PREFIX}{span}: {rows} rows")
    # The span windows ExampleGen reads, as relative links: the folder can be copied or mounted
    # elsewhere whole (the Kubeflow shared volume is such a folder).
    layout.prepare(settings)
    print(f"ExampleGen's span windows are under {settings.example_gen_input}")
    return 0


def register(commands) -> None:
    prepare = commands.add_parser(
        "prepare-data", help="Write the Chicago Taxi sample from the tfx wheel as spans."
    )
    add_folder_flags(prepare)
    prepare.set_defaults(handler=_prepare_data)
