# The tokenizer links libtorch on purpose: the suite proves the dlopen'ed sentencepiece shim and LibTorch
# share a process without the protobuf clash (docs/ARCHITECTURE.md, "Machine facts").
phatgoose_test(test_tokenizer SOURCES test_tokenizer.cpp LIBS phatgoose_tokenizer torch LABELS unit)
