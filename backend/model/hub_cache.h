#pragma once
// Models by Hugging Face hub id, from the local cache only (never the network): where every researcher
// already keeps their T5 checkpoints. `google/flan-t5-large` names
//   $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//     /models--google--flan-t5-large/snapshots/<revision>/
// with the revision that refs/main names, else the newest snapshot. Files there are usually symbolic
// links into blobs/, which the loaders follow.
#include <filesystem>
#include <string>
#include <vector>

namespace phatgoose {

// The cache folders searched, in order (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub).
std::vector<std::filesystem::path> hubCacheFolders();

// True for "org/name" (one slash, no path-like parts): what a hub id looks like.
bool looksLikeHubId(const std::string& text);

// The hub ids of the models in the cache folders that have a snapshot with a config.json, sorted, each
// once: what File > Open model from Hugging Face cache offers.
std::vector<std::string> cachedHubModels();

// `model` itself when it is an existing folder; else, for a hub id, its snapshot folder in the cache.
// Throws phatgoose::Error saying where it looked when neither exists.
std::filesystem::path resolveModelFolder(const std::string& model);

}  // namespace phatgoose
