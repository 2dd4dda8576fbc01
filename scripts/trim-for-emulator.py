"""Removes resources the emulator's CloudFormation does not know, and every property and output
that refers to them, from a packaged (JSON) template; prints what it removed.

    trim-for-emulator.py IN.json OUT.json TYPE [TYPE ...]

The emulator refuses a whole stack that names an unknown resource type; on AWS nothing is trimmed.
"""
import json
import sys

src, dst, unsupported = sys.argv[1], sys.argv[2], set(sys.argv[3:])
template = json.load(open(src))
resources = template["Resources"]
removed = sorted(name for name, r in resources.items() if r.get("Type") in unsupported)
for name in removed:
    print(f"trim: resource {name} ({resources[name]['Type']}) is not supported by the emulator")
    del resources[name]


def refers(value):
    if isinstance(value, dict):
        if value.get("Ref") in removed:
            return True
        att = value.get("Fn::GetAtt")
        if isinstance(att, list) and att and att[0] in removed:
            return True
        return any(refers(v) for v in value.values())
    if isinstance(value, list):
        return any(refers(v) for v in value)
    return False


def strip(node, path):
    if isinstance(node, dict):
        for key in list(node):
            if refers(node[key]) and not isinstance(node[key], (list,)) and (
                    isinstance(node[key], dict) and ("Ref" in node[key] or "Fn::GetAtt" in node[key] or "Fn::Sub" in node[key])):
                print(f"trim: property {'.'.join(path + [key])} refers to a trimmed resource")
                del node[key]
            else:
                strip(node[key], path + [key])
    elif isinstance(node, list):
        for i, v in enumerate(node):
            strip(v, path + [str(i)])


strip(resources, [])
for name, output in list(template.get("Outputs", {}).items()):
    if refers(output):
        print(f"trim: output {name} refers to a trimmed resource")
        del template["Outputs"][name]
json.dump(template, open(dst, "w"), indent=1)
