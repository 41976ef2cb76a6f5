phatgoose_test(test_routing
    SOURCES test_routing.cpp fixtures/tiny_t5.cpp fixtures/random_experts.cpp reference_case.cpp
    LIBS phatgoose_backend
    LABELS unit parity)
