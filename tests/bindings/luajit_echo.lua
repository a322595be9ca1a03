-- wsbridge from LuaJIT's FFI: ffi.cdef from the preprocessed header
-- (`gcc -E -P`, see .ci/ecosystem.sh), ffi.load of the library.
--
--   luajit luajit_echo.lua LIB CDEF URL [CA.pem]
--
-- Connects, echoes a text and a binary message, closes with 4001 "luajit bye"
-- and checks the CLOSE event. Exit status 0 on success.
local ffi = require("ffi")

local libpath, cdefpath, url, ca = arg[1], arg[2], arg[3], arg[4]
assert(libpath and cdefpath and url, "usage: luajit luajit_echo.lua LIB CDEF URL [CA.pem]")

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

ffi.cdef(slurp(cdefpath))
local wsb = ffi.load(libpath)
local WAIT_MS = 10000

local function fail(msg)
  io.stderr:write("FAIL: " .. msg .. "\n")
  os.exit(1)
end

local function check(r, what)
  if r ~= wsb.WSB_OK then
    fail(what .. ": " .. ffi.string(wsb.wsb_result_name(r)) .. ": " .. ffi.string(wsb.wsb_last_error()))
  end
end

print(("wsbridge %s (ABI %d) via LuaJIT FFI"):format(ffi.string(wsb.wsb_version()), wsb.wsb_abi_version()))

local opts = wsb.wsb_options_new()
if ca then
  local pem = slurp(ca)
  check(wsb.wsb_options_add_root_certificates(opts, pem, #pem), "add_root_certificates")
end
local handle = ffi.new("wsb_socket[1]")
local r = wsb.wsb_connect(url, opts, handle)
wsb.wsb_options_free(opts)
check(r, "connect")
local ws = handle[0]
check(wsb.wsb_wait_open(ws, WAIT_MS), "wait_open")

local ev = ffi.new("wsb_event[1]")
local function next_event()
  check(wsb.wsb_wait_event(ws, ev, WAIT_MS), "wait_event")
  return ev[0].kind, ffi.string(ev[0].data, ev[0].len)
end

local kind = next_event()
if kind ~= wsb.WSB_EVENT_OPEN then fail("expected OPEN, got " .. tonumber(kind)) end

local text = "hello from LuaJIT"
local binary = "\0\1\254\255\0"
check(wsb.wsb_send_text(ws, text, #text), "send_text")
check(wsb.wsb_send_binary(ws, binary, #binary), "send_binary")

local data
kind, data = next_event()
if kind ~= wsb.WSB_EVENT_TEXT or data ~= text then fail("bad text echo: " .. data) end
print("text: " .. data)
kind, data = next_event()
if kind ~= wsb.WSB_EVENT_BINARY or data ~= binary then fail("bad binary echo") end
print("binary: " .. #data .. " bytes")

check(wsb.wsb_close(ws, 4001, "luajit bye"), "close")
kind, data = next_event()
if kind ~= wsb.WSB_EVENT_CLOSE then fail("expected CLOSE, got " .. tonumber(kind)) end
print(("close: code %d, clean %s, reason %q"):format(ev[0].close_code, tostring(ev[0].clean), data))
if ev[0].close_code ~= 4001 or not ev[0].clean or data ~= "luajit bye" then
  fail("the close was not echoed cleanly")
end
check(wsb.wsb_free(ws), "free")
wsb.wsb_shutdown(1000)
print("ok: echo and close")
