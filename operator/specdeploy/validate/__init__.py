"""The draft/target compatibility validator: does this draft fit this target under vLLM speculative decoding?

It reads only metadata (config.json, generation_config.json, tokenizer files; never weights) from a Hugging Face
repository or a local folder and runs the nine contract checks (vocabulary, token_ids, special_tokens,
context_length, tensor_parallel, architecture, parameter_ratio, memory, dtype). It imports nothing else of
specdeploy and neither kopf, the Kubernetes client, torch nor transformers, so the validator image stays small
and the validator runs anywhere. Entry points: ``engine.validate`` (library) and ``cli.main`` (command line).
"""
