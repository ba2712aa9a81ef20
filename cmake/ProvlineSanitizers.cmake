# ASan+UBSan without recovery, for the whole tree (preset "asan").
if(PL_SANITIZE)
  add_compile_options(-O1 -g -fno-omit-frame-pointer
    -fsanitize=address,undefined -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
if(PL_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PL_FUZZ needs clang (libFuzzer)")
  endif()
  # Instrument everything for coverage; the fuzzer main is linked only into fuzz targets.
  add_compile_options(-g -O1 -fno-omit-frame-pointer
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()
