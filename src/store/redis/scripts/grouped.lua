-- Prepended to the commit scripts (Redis scripts cannot share code otherwise).
--
-- Values gathered per key, the keys in first-use order, so a script writes each key once:
-- `g.add(key, a[, b])` appends a (and b) to key's list; `g.keys` and `g.lists[key]` read them.
local function grouped()
  local g = {lists = {}, keys = {}}
  function g.add(key, a, b)
    local list = g.lists[key]
    if not list then
      list = {}
      g.lists[key] = list
      g.keys[#g.keys + 1] = key
    end
    list[#list + 1] = a
    if b ~= nil then list[#list + 1] = b end
  end
  return g
end

