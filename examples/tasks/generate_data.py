"""Regenerate 00-data.yaml: two tables that ship with scikit-learn (no download), as ConfigMaps.

    python examples/tasks/generate_data.py

- wine (multiclass): 178 wines, 13 chemical measurements, which of 3 cultivars (`cultivar` 0/1/2).
- diabetes (regression): 442 patients, 10 baseline variables (unscaled), disease progression one
  year later (`progression`).
"""

from pathlib import Path

import yaml


def wine_csv() -> str:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.rename(
        columns={"od280/od315_of_diluted_wines": "od280_od315", "target": "cultivar"})
    return frame.to_csv(index=False)


def diabetes_csv() -> str:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    return frame.astype({"age": int, "sex": int}).to_csv(index=False)


def configmap(name: str, key: str, csv: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "kadence-example"}},
            "data": {key: csv}}


class _LiteralDumper(yaml.SafeDumper):
    pass


_LiteralDumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None),
)


def render() -> str:
    header = ("# The examples' data: scikit-learn's wine and diabetes tables, written by\n"
              "# examples/tasks/generate_data.py. Do not edit by hand.\n")
    documents = [configmap("wine-data", "wine.csv", wine_csv()),
                 configmap("diabetes-data", "diabetes.csv", diabetes_csv())]
    return header + yaml.dump_all(documents, Dumper=_LiteralDumper, sort_keys=False, width=1000)


if __name__ == "__main__":
    (Path(__file__).parent / "00-data.yaml").write_text(render())
