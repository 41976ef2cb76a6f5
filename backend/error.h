#pragma once
// The one exception type the backend throws. Messages are complete sentences for a user: they name the
// file (and tensor, line, key...) and the problem. The CLI and GUI turn them into a message and an exit
// code or a dialog; nothing inside the backend catches and hides them.
#include <stdexcept>
#include <string>

namespace phatgoose {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace phatgoose
