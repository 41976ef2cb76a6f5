# Every routing method, sparse = dense, the PEFT reference logits, and the fused LoRA kernels.
phatgoose_test(test_routing SOURCES test_routing.cpp LIBS phatgoose_test_fixtures LABELS unit parity)
phatgoose_test(test_lora_kernels SOURCES test_lora_kernels.cpp LIBS phatgoose_backend LABELS unit parity)
phatgoose_test(test_routing_statistics SOURCES test_routing_statistics.cpp LIBS phatgoose_test_fixtures LABELS unit)
