# Warnings for our own targets (not for code we only link against).
set(TENURE_WARNINGS -Wall -Wextra -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -Wno-unused-parameter)
if(TENURE_WERROR)
  list(APPEND TENURE_WARNINGS -Werror)
endif()
