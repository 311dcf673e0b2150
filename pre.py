import time, torch, json
from specdec_lite.models.pair import load_pair
from transformers import DynamicCache
pair = load_pair(dtype="int8")
prompts = json.load(open("/work/main/specdec_lite/tools/prompts.json"))
print(type(prompts), list(prompts)[:3] if isinstance(prompts, dict) else prompts[0])
