"""The paper's recipe (geoest.reproduction.recipe) as `python -m geoest.reproduce --dry_run` prints
it: every stage in order, partitionings used as published unless regenerated, and docs/reproduce.md
holds the printed sequence."""
import pathlib
import re

from reproduction_helpers import printed_commands, reproduce

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reproduce.md"


def test_dry_run_prints_every_stage_of_the_recipe(tmp_path):
    done = reproduce("--data_dir=data", "--work_dir=work", "--dry_run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    commands = printed_commands(done.stdout)
    downloads = [c for c in commands if c.startswith("python -m geoest.download")]
    assert [re.search(r"--urls_csv=data/(\w+)_urls.csv", c)[1] for c in downloads] == [
        "mp16", "yfcc25600", "im2gps", "im2gps3k"]
    trains = [re.search(r"--model_dir=work/models/(\w+)", c)[1] for c in commands if "geoest.train" in c]
    assert trains == ["base_L_c", "base_L_c_ft", "base_L_m", "base_L_m_ft", "base_L_f", "base_L_f_ft", "base_M",
                      "base_M_ft", "base_vgg_L_m", "base_vgg_L_m_ft", "isn_indoor", "isn_natural", "isn_urban"]
    for command in commands:
        if "--model_dir=work/models/isn_" in command:     # §3.3: from base(M)'s 15-epoch model
            assert "--gin_param=\"BASE_M_DIR='work/models/base_M'\"" in command
        tuned = re.search(r"geoest.train .*--model_dir=work/models/(\w+)_ft ", command)
        if tuned:
            variant = tuned[1]
            assert f"--gin_file={variant}.gin --gin_file=finetune.gin" in command
            assert f"FINETUNE_FROM='work/models/{variant}'" in command
    evaluations = [c for c in commands if "geoest.evaluate" in c]
    assert [re.search(r"--reference=(\w+)", c)[1] for c in evaluations] == ["im2gps", "im2gps3k"]
    for command in evaluations:      # base-vgg_c(L, m) as its own row of the same run
        assert "--model_dir=base_vgg_c=work/models/base_vgg_L_m_ft:geometric" in command
        assert "--model_dir=base_vgg=work/models/base_vgg_L_m_ft " in command
        assert ("--isn_dirs=indoor=work/models/isn_indoor,natural=work/models/isn_natural,"
                "urban=work/models/isn_urban") in command
    assert "data/mp16_partitions/{cells_50_5000,cells_50_2000,cells_50_1000}.csv, used as published" in done.stdout
    assert "create_partitioning" not in done.stdout
    regenerated = reproduce("--data_dir=data", "--work_dir=work", "--dry_run", "--regenerate_partitionings",
                             cwd=tmp_path)
    assert len([c for c in printed_commands(regenerated.stdout) if "geoest.create_partitioning" in c]) == 3
    assert not (tmp_path / "work").exists()


def test_docs_hold_the_printed_sequence(tmp_path):
    done = reproduce("--data_dir=data", "--work_dir=work", "--dry_run", cwd=tmp_path)
    doc = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- needs: real data \(the sequence of python -m geoest.reproduce --data_dir=data --work_dir=work --dry_run\) -->\n"
                      r"```bash\n(.*?)```", doc, re.S)
    assert block, f"{DOC} has no marked block of the sequence"
    assert block[1] == done.stdout
