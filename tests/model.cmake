# The T5 engine against the reference cases and on its own, and the safetensors format (phatgoose_io: no
# LibTorch needed) with its libFuzzer target.
phatgoose_test(test_t5_reference SOURCES test_t5_reference.cpp LIBS phatgoose_test_fixtures LABELS unit parity)
phatgoose_test(test_weight_kernels SOURCES test_weight_kernels.cpp LIBS phatgoose_backend LABELS unit parity)
phatgoose_test(test_pointwise_kernels SOURCES test_pointwise_kernels.cpp LIBS phatgoose_backend LABELS unit parity)
phatgoose_test(test_t5_engine SOURCES test_t5_engine.cpp LIBS phatgoose_test_fixtures LABELS unit)
phatgoose_test(test_safetensors SOURCES test_safetensors.cpp LIBS phatgoose_io LABELS unit)
if(PHATGOOSE_BUILD_FUZZ)
    include(${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz.cmake)
endif()
# PyTorch's zip checkpoint format, read by an allowlisted pickle interpreter (phatgoose_io: no LibTorch).
phatgoose_test(test_pytorch_checkpoint SOURCES test_pytorch_checkpoint.cpp LIBS phatgoose_io LABELS unit)
