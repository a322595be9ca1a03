# Builds the Luau VM, compiler and AST (luau0-src's sources, the same the
# luau-vm crate builds on Linux) with mingw-w64 g++, for wsb-luau.exe
# (.ci/windows.sh):
#
#   make -f tests/windows/luau.mk -j2 SRC=<luau0-src>/luau OUT=<dir>
#
# Only VM/src/ldo.cpp depends on the error mode (LUA_USE_LONGJMP), so
# everything else is built once into OUT/libluau.a and ldo.cpp twice:
# OUT/ldo-exceptions.o (C++ exceptions, what executors use) and
# OUT/ldo-longjmp.o (LUA_USE_LONGJMP, what the Linux host uses). The
# settings match examples-c/luau/vm/build.rs: LUAI_MAXCSTACK=1000000.
# The VM is built with -O2; the compiler and AST, whose speed matters less,
# with -O1 (half the build time).

CXX = x86_64-w64-mingw32-g++
AR = x86_64-w64-mingw32-ar
DEFS = -DLUAI_MAXCSTACK=1000000 -DLUA_VECTOR_SIZE=3 -DLUA_API='extern "C"' -DLUACODE_API='extern "C"'
INC = $(addprefix -I$(SRC)/,Common/include Ast/include Bytecode/include Compiler/include VM/include VM/src)
CXXFLAGS = -std=c++17 -fno-math-errno -w $(DEFS) $(INC)

VM := $(filter-out $(SRC)/VM/src/ldo.cpp,$(wildcard $(SRC)/VM/src/*.cpp))
REST := $(wildcard $(addsuffix /src/*.cpp,$(addprefix $(SRC)/,Common Ast Bytecode Compiler)))
OBJ := $(patsubst $(SRC)/%.cpp,$(OUT)/%.o,$(VM) $(REST))

all: $(OUT)/libluau.a $(OUT)/ldo-exceptions.o $(OUT)/ldo-longjmp.o

$(OUT)/libluau.a: $(OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(OUT)/VM/src/%.o: $(SRC)/VM/src/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -O2 -c $< -o $@

$(OUT)/%.o: $(SRC)/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -O1 -c $< -o $@

$(OUT)/ldo-exceptions.o: $(SRC)/VM/src/ldo.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -O2 -c $< -o $@

$(OUT)/ldo-longjmp.o: $(SRC)/VM/src/ldo.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -O2 -DLUA_USE_LONGJMP=1 -c $< -o $@

.PHONY: all
