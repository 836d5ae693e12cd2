# Included by CMake right after llama.cpp's own project() command (through
# CMAKE_PROJECT_llama.cpp_INCLUDE, set in the Makefile). llama-cpp-python forces
# llama.cpp's "common" library on, but its Python bindings load only libllama and
# libggml: common (argument parsing, chat templates, HTTP downloads) is the
# slowest part of the compile and nothing mascope runs uses it.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library" FORCE)
