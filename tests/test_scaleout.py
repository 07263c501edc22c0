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
