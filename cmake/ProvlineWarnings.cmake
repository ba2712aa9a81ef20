# Warnings for every provline target (STYLE.md §7.4). Link pl_warnings PRIVATE.
add_library(pl_warnings INTERFACE)
target_compile_options(pl_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wformat=2 -Wwrite-strings -Wmissing-prototypes
  -Wstrict-prototypes -Wvla -Wcast-qual -Wundef -Wimplicit-fallthrough
  -Wpointer-arith -Wold-style-definition -Wnull-dereference)
if(PL_WERROR)
  target_compile_options(pl_warnings INTERFACE -Werror
    -Wno-error=deprecated-declarations -Wno-error=cpp)
endif()
# Stricter numeric conversions for the pure codecs (untrusted input).
add_library(pl_warnings_strict INTERFACE)
target_link_libraries(pl_warnings_strict INTERFACE pl_warnings)
target_compile_options(pl_warnings_strict INTERFACE -Wconversion -Wsign-conversion)
