from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType


CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "accelerate_configs"


@pytest.mark.parametrize(
    "name, kind, processes",
    [
        ("multi_gpu_ddp.yaml", DistributedType.MULTI_GPU, 8),
        ("fsdp_full_shard.yaml", DistributedType.FSDP, 8),
        ("deepspeed_zero2.yaml", DistributedType.DEEPSPEED, 8),
        ("deepspeed_zero3.yaml", DistributedType.DEEPSPEED, 8),
        ("two_nodes_ddp.yaml", DistributedType.MULTI_GPU, 16),
        ("cpu_two_processes.yaml", DistributedType.MULTI_GPU, 2),
    ],
)
def test_accelerate_configs_parse_and_validate(name, kind, processes):
    config = load_config_from_file(str(CONFIGS / name))
    assert config.distributed_type == kind and config.num_processes == processes
    if kind == DistributedType.DEEPSPEED:
        assert config.deepspeed_config["zero_stage"] in (2, 3)
    if kind == DistributedType.FSDP:
        assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    if name == "two_nodes_ddp.yaml":
        assert config.num_machines == 2


def test_every_config_is_documented():
    readme = (CONFIGS.parent / "README.md").read_text()
    for path in CONFIGS.glob("*.yaml"):
        assert path.name in readme, f"{path.name} has no command line in recipes/README.md"


def test_the_launch_check_runs_each_gpu_config_through_the_recipe_and_resumes(tmp_path):
    """benchmarks/launch_configs.py (run on a lent GPU): its commands name the shipped configs, and the recipe
    accepts their arguments: a fresh run that saves at step 2, then a resume from that checkpoint."""
    import importlib.util
    import sys

    from testing_utils import REPO, load_recipe

    spec = importlib.util.spec_from_file_location("launch_configs", REPO / "benchmarks" / "launch_configs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    recipe = load_recipe("pretrain")
    for config in module.CONFIGS:
        train, resume = module.commands(config, 1, tmp_path)
        assert Path(train[train.index("--config_file") + 1]).is_file()
        assert train[train.index("--num_processes") + 1] == "1"
        script = str(REPO / "recipes" / "pretrain.py")
        _, first = recipe.parse_args(train[train.index(script) + 1 :])
        _, second = recipe.parse_args(resume[resume.index(script) + 1 :])
        assert (first.max_steps, first.save_steps, first.output_dir) == (4, 2, str(tmp_path / config))
        assert second.max_steps == 4 and second.resume_from_checkpoint == str(tmp_path / config / "checkpoint-2")
