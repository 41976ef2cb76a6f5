# libFuzzer targets. The project builds with g++, which has no libFuzzer, so the fuzzers are compiled by a
# direct clang++ call from their sources (the parser needs only the standard library, nlohmann json and
# the atomic writer that safetensors.cpp links against).
find_program(PHATGOOSE_CLANGXX NAMES clang++ clang++-14)
if(NOT PHATGOOSE_CLANGXX)
    message(FATAL_ERROR "PHATGOOSE_BUILD_FUZZ is ON but clang++ was not found. Install the Debian packages "
                        "'clang' and 'libclang-rt-14-dev', or configure with -DPHATGOOSE_BUILD_FUZZ=OFF.")
endif()

set(PHATGOOSE_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c++20 -O1 -g)

# A missing runtime only shows when linking, so link a trivial fuzzer now rather than fail mid-build.
if(NOT PHATGOOSE_FUZZ_RUNTIME_CHECKED STREQUAL PHATGOOSE_CLANGXX)
    set(probe_source ${CMAKE_CURRENT_BINARY_DIR}/fuzz/probe.cpp)
    file(WRITE ${probe_source}
         "#include <cstddef>\n#include <cstdint>\n"
         "extern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n")
    execute_process(
        COMMAND ${PHATGOOSE_CLANGXX} ${PHATGOOSE_FUZZ_FLAGS} ${probe_source} -o ${CMAKE_CURRENT_BINARY_DIR}/fuzz/probe
        RESULT_VARIABLE probe_result OUTPUT_VARIABLE probe_output ERROR_VARIABLE probe_output)
    if(NOT probe_result EQUAL 0)
        message(FATAL_ERROR "PHATGOOSE_BUILD_FUZZ is ON but ${PHATGOOSE_CLANGXX} cannot link a libFuzzer "
                            "program with ASan and UBSan. Install the Debian packages 'clang' and "
                            "'libclang-rt-14-dev', or configure with -DPHATGOOSE_BUILD_FUZZ=OFF.\n${probe_output}")
    endif()
    set(PHATGOOSE_FUZZ_RUNTIME_CHECKED ${PHATGOOSE_CLANGXX} CACHE INTERNAL "The clang++ known to link libFuzzer programs")
endif()

set(fuzz_dir ${CMAKE_CURRENT_LIST_DIR})
set(backend_dir ${PROJECT_SOURCE_DIR}/backend)
set(fuzz_out ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
file(MAKE_DIRECTORY ${fuzz_out}/artifacts)
# System folders stay implicit: an explicit -I/usr/include breaks libstdc++'s #include_next.
get_target_property(json_include_dirs nlohmann_json::nlohmann_json INTERFACE_INCLUDE_DIRECTORIES)
set(fuzz_include_flags -I${backend_dir})
foreach(dir IN LISTS json_include_dirs)
    if(NOT dir MATCHES "^/usr(/local)?/include/?$")
        list(APPEND fuzz_include_flags -I${dir})
    endif()
endforeach()
# The parsers need only the standard library, nlohmann json and the atomic writer.
set(fuzz_backend_sources ${backend_dir}/model/safetensors.cpp ${backend_dir}/atomic_file.cpp)
set(fuzz_backend_headers ${backend_dir}/model/safetensors.h ${backend_dir}/error.h ${backend_dir}/atomic_file.h)

# phatgoose_fuzzer(NAME SOURCES a.cpp ... CORPUS dir [DICT file] MAX_LEN n): a libFuzzer target and its
# ctest run of 60 s. The fuzzer adds what it finds to its corpus folder, so it runs on a copy in the build
# tree and the seeds in the source tree stay as committed. Crashing inputs land in fuzz/artifacts/.
function(phatgoose_fuzzer name)
    cmake_parse_arguments(F "" "CORPUS;DICT;MAX_LEN" "SOURCES;HEADERS" ${ARGN})
    set(binary ${fuzz_out}/${name})
    set(sources ${F_SOURCES} ${fuzz_backend_sources})
    add_custom_command(
        OUTPUT ${binary}
        COMMAND ${PHATGOOSE_CLANGXX} ${PHATGOOSE_FUZZ_FLAGS} ${fuzz_include_flags} ${sources} -o ${binary}
        DEPENDS ${sources} ${fuzz_backend_headers} ${F_HEADERS}
        COMMENT "Building the libFuzzer target ${name} with clang++"
        VERBATIM)
    add_custom_target(${name} ALL DEPENDS ${binary})
    add_test(NAME ${name}_corpus COMMAND ${CMAKE_COMMAND} -E copy_directory ${F_CORPUS} ${fuzz_out}/${name}_corpus)
    set_tests_properties(${name}_corpus PROPERTIES LABELS fuzz FIXTURES_SETUP ${name}_corpus)
    set(dict)
    if(F_DICT)
        set(dict -dict=${F_DICT})
    endif()
    add_test(NAME ${name}
             COMMAND ${binary} -max_total_time=60 -rss_limit_mb=2048 -timeout=10 -max_len=${F_MAX_LEN} ${dict}
                     -artifact_prefix=${fuzz_out}/artifacts/ ${fuzz_out}/${name}_corpus
             WORKING_DIRECTORY ${fuzz_out})
    set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 240 FIXTURES_REQUIRED ${name}_corpus)
endfunction()

phatgoose_fuzzer(fuzz_safetensors_header SOURCES ${fuzz_dir}/fuzz_safetensors_header.cpp
                 CORPUS ${fuzz_dir}/corpus DICT ${fuzz_dir}/safetensors.dict MAX_LEN 8192)
# The PyTorch checkpoint reader: the zip directory and the allowlisted pickle interpreter.
phatgoose_fuzzer(fuzz_pytorch_checkpoint
                 SOURCES ${fuzz_dir}/fuzz_pytorch_checkpoint.cpp ${backend_dir}/model/pytorch_checkpoint.cpp
                 HEADERS ${backend_dir}/model/pytorch_checkpoint.h
                 CORPUS ${fuzz_dir}/corpus_pytorch DICT ${fuzz_dir}/pytorch.dict MAX_LEN 16384)
