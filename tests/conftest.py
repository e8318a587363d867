import os

import pytest

HERE = os.path.dirname(__file__)

COCO_DIR = os.path.join(HERE, "data", "coco_val2014_100")


@pytest.fixture(scope="session")
def lvis_path():
    import lveval
    return lveval.data_path()


@pytest.fixture(scope="session")
def lvis_dataset(lvis_path):
    import json
    with open(lvis_path) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def coco_paths():
    return {"gt": os.path.join(COCO_DIR, "instances_val2014_100.json"),
            "bbox": os.path.join(COCO_DIR, "instances_val2014_fakebbox100_results.json"),
            "segm": os.path.join(COCO_DIR, "instances_val2014_fakesegm100_results.json")}
