# PEFT adapter folders, gates and expert libraries.
phatgoose_test(test_experts SOURCES test_experts.cpp LIBS phatgoose_test_fixtures LABELS unit)
# The libraries researchers download: r-three best.pt import/export, adapter_model.bin, hub ids.
phatgoose_test(test_rthree SOURCES test_rthree.cpp LIBS phatgoose_cli phatgoose_test_fixtures LABELS unit)
