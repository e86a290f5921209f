-- Headless Neovim session for tests/lsp_nvim.rs: open a policy, attach `palisade lsp` with
-- Neovim's own LSP client, wait for diagnostics, ask for a hover, write what Neovim received
-- as JSON and quit. Written for Neovim 0.7 (Debian bookworm) and later.
local bin = os.getenv("PALISADE_BIN")
local file = os.getenv("POLICY_FILE")
local out = os.getenv("RESULT_FILE")

vim.cmd("edit " .. vim.fn.fnameescape(file))
local buf = vim.api.nvim_get_current_buf()
local client_id = vim.lsp.start_client({
  name = "palisade",
  cmd = { bin, "lsp" },
  root_dir = vim.fn.fnamemodify(file, ":p:h"),
})
vim.lsp.buf_attach_client(buf, client_id)

local got = vim.wait(20000, function()
  return #vim.diagnostic.get(buf) > 0
end, 50)

local diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  local code = d.code
  if code == nil and d.user_data and d.user_data.lsp then
    code = d.user_data.lsp.code
  end
  table.insert(diagnostics, {
    line = d.lnum,
    col = d.col,
    severity = d.severity,
    code = code,
    message = d.message,
  })
end

-- Hover on the `background` key (line 7, 0-based 6, column 4).
local params = {
  textDocument = { uri = vim.uri_from_bufnr(buf) },
  position = { line = 6, character = 4 },
}
local hover = ""
local answers = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 10000) or {}
for _, answer in pairs(answers) do
  if answer.result and answer.result.contents then
    hover = answer.result.contents.value or ""
  end
end

local f = assert(io.open(out, "w"))
f:write(vim.fn.json_encode({ attached = got, diagnostics = diagnostics, hover = hover }))
f:close()
vim.lsp.stop_client(client_id)
vim.cmd("qa!")
