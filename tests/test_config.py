import json
from pathlib import Path

import pytest

import nvdrec
from nvdrec import Config, ConfigError, load_config
from nvdrec.train.config import config_keys, parse_override

NVDIFFREC_DEFAULTS = {
    "iter": 5000,
    "batch": 1,
    "spp": 1,
    "layers": 1,
    "train_res": [512, 512],
    "texture_res": [1024, 1024],
    "save_interval": 1000,
    "learning_rate": 0.01,
    "min_roughness": 0.08,
    "background": "checker",
    "loss": "logl1",
    "isosurface": "dmtet",
    "dmtet_grid": 64,
    "mesh_scale": 2.1,
    "env_scale": 1.0,
    "sdf_regularizer": 0.2,
    "laplace": "relative",
    "laplace_scale": 10000.0,
    "kd_min": [0, 0, 0, 0],
    "kd_max": [1, 1, 1, 1],
    "ks_min": [0, 0.08, 0],
    "ks_max": [1, 1, 1],
    "nrm_min": [-1, -1, 0],
    "nrm_max": [1, 1, 1],
    "cam_near_far": [0.1, 1000.0],
    "learn_light": True,
    "validate": True,
    "custom_mip": False,
    "random_textures": False,
    "camera_space_light": False,
    "lock_light": False,
    "lock_pos": False,
    "pre_load": True,
    "ref_mesh": None,
    "base_mesh": None,
    "envmap": None,
    "mtl_override": None,
    "display": None,
}


def test_defaults_match_nvdiffrec():
    cfg = Config()
    for k, v in NVDIFFREC_DEFAULTS.items():
        assert getattr(cfg, k) == v, k
    assert cfg.display_res == [512, 512]  # follows train_res like nvdiffrec


def test_nvdiffrec_configs_load_unchanged(shared_data):
    files = sorted((shared_data / "nvdiffrec-configs").glob("*.json"))
    assert len(files) == 15
    for f in files:
        raw = json.loads(f.read_text())
        cfg = load_config(f)
        for k, v in raw.items():
            if k in ("out_dir", "ref_mesh", "base_mesh", "envmap", "mtl_override"):
                continue
            got = getattr(cfg, k)
            assert got == v or (isinstance(v, list) and got == [float(x) for x in v]), (f.name, k)


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match="unknown config key 'learnig_rate'.*'learning_rate'"):
        load_config({"learnig_rate": 0.1})


@pytest.mark.parametrize(
    "key,value,allowed",
    [
        ("iter", -1, "integer >= 0"),
        ("iter", "many", "integer"),
        ("batch", 0, "integer >= 1"),
        ("train_res", [512], "list of 2 integers"),
        ("loss", "l3", "'logl1'"),
        ("background", "whte", "did you mean 'white'"),
        ("learning_rate", -0.1, "positive number"),
        ("ks_min", [0, 0.1], "list of 3 numbers"),
        ("validate", "yes", "true or false"),
        ("device", "gpu", "'cuda:N'"),
        ("display", [{"bsdf": "rainbow"}], "'kd'"),
        ("mesh_scale", 0, "> 0"),
        ("env_scale", float("nan"), "finite"),
    ],
)
def test_bad_values_name_key_value_and_allowed(key, value, allowed):
    with pytest.raises(ConfigError) as e:
        load_config({key: value})
    msg = str(e.value)
    shown = "'rainbow'" if key == "display" else repr(value)
    assert f"'{key}" in msg and shown in msg and allowed in msg


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="cam_near_far"):
        load_config({"cam_near_far": [10, 1]})
    with pytest.raises(ConfigError, match="ks_min"):
        load_config({"ks_min": [0, 0.9, 0], "ks_max": [1, 0.5, 1]})


def test_learning_rate_forms():
    assert load_config({"learning_rate": 0.03}).learning_rate == 0.03
    assert load_config({"learning_rate": [0.03, 0.003]}).learning_rate == [0.03, 0.003]
    nested = load_config({"learning_rate": [[0.03, 0.01], [0.003, 0.001]]}).learning_rate
    assert nested == [[0.03, 0.01], [0.003, 0.001]]


def test_out_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config({"out_dir": "bob"}).out_dir == str(tmp_path / "out" / "bob")
    absolute = tmp_path / "elsewhere"
    assert load_config({"out_dir": str(absolute)}).out_dir == str(absolute)
    f = tmp_path / "myrun.json"
    f.write_text("{}")
    assert load_config(f).out_dir == str(tmp_path / "out" / "myrun")
    # a relative out_dir stays under out/ (an absolute one is how to write elsewhere)
    assert load_config({"out_dir": "a/../b"}).out_dir == str(tmp_path / "out" / "b")
    for bad in ("../x", "a/../../x", ".", "../out2/x"):
        with pytest.raises(ConfigError, match="out_dir.*not a folder under out/"):
            load_config({"out_dir": bad})


def test_relative_paths_resolve_next_to_config(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "m.obj").write_text("v 0 0 0\n")
    f = tmp_path / "cfg" / "c.json"
    f.write_text(json.dumps({"ref_mesh": "m.obj", "envmap": "missing.hdr"}))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(f)
    assert cfg.ref_mesh == str(tmp_path / "cfg" / "m.obj")
    assert cfg.envmap == str(tmp_path / "missing.hdr")  # not next to config: cwd


def test_overrides_and_roundtrip(tmp_path):
    cfg = load_config({"iter": 10}, overrides={"iter": 20, "train-res": [64, 64]})
    assert cfg.iter == 20 and cfg.train_res == [64, 64] and cfg.display_res == [64, 64]
    p = tmp_path / "config.json"
    cfg.save(p)
    again = load_config(p)
    assert again.to_dict() == cfg.to_dict()
    assert nvdrec.load_config is load_config


def test_malformed_json_names_file_and_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{\n  "iter": 10,\n  "batch": \n}')
    with pytest.raises(ConfigError, match=r"bad.json.*line 4"):
        load_config(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.json")
    p.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_config(p)


def test_parse_override():
    assert parse_override("iter", "200") == 200
    assert parse_override("train_res", "[64, 64]") == [64, 64]
    assert parse_override("background", "white") == "white"
    assert parse_override("validate", "False") is False
    with pytest.raises(ConfigError, match="did you mean 'batch'"):
        parse_override("bacth", "4")
    assert "learning_rate" in config_keys()


def test_example_configs_load():
    """Every config in configs/ (and the packaged demo) is valid."""
    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.glob("*.json"))
    assert len(files) >= 13
    for f in files:
        cfg = nvdrec.load_config(f)
        assert cfg.iter > 0, f
    metal = nvdrec.load_config(root / "spot_metal.json")
    assert metal.lock_pos and Path(metal.mtl_override).is_file()


def test_every_config_key_says_what_it_does():
    import dataclasses

    from nvdrec.train.config import Config

    missing = [f.name for f in dataclasses.fields(Config) if not f.metadata.get("doc")]
    assert missing == []
