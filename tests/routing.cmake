phatgoose_test(test_routing
    SOURCES test_routing.cpp fixtures/tiny_t5.cpp fixtures/random_experts.cpp reference_case.cpp
    LIBS phatgoose_backend
    LABELS unit parity)

phatgoose_test(test_lora_kernels
    SOURCES test_lora_kernels.cpp
    LIBS phatgoose_backend
    LABELS unit parity)
