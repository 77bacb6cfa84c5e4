META = {
    "env_id": "env_8",
    "env_class_name": "WarehouseInventory",
    "environment_summary": "Multi-site warehouse inventory",
    "environment_introduction": (
        "This environment is the inventory system of a distributor with warehouses in two cities. It holds "
        "the SKUs with their costs and reorder levels, the quantity on hand per warehouse, an audit trail of "
        "stock movements and purchase orders to the supplier. Stock controllers use it to move, correct, "
        "order and receive stock."
    ),
    "constraints_rules": [
        "Stock never goes below zero; every change is recorded as a movement with a reason.",
        "Transfers move at most what the source warehouse holds.",
        "Purchase orders are for 1 to 10000 units and add stock only when received.",
    ],
}

BASE = {
    "skus": {
        "SKU-BOLT-M8": {"sku": "SKU-BOLT-M8", "description": "Hex bolt M8 x 40, zinc", "unit_cost": 0.12,
                        "reorder_level": 500},
        "SKU-DRILL-18V": {"sku": "SKU-DRILL-18V", "description": "Cordless drill 18V", "unit_cost": 54.0,
                          "reorder_level": 10},
        "SKU-GLOVE-L": {"sku": "SKU-GLOVE-L", "description": "Work gloves, size L", "unit_cost": 2.3,
                        "reorder_level": 50},
    },
    "warehouses": {
        "WH-LYON": {"warehouse_id": "WH-LYON", "city": "Lyon"},
        "WH-LILLE": {"warehouse_id": "WH-LILLE", "city": "Lille"},
    },
    "stock": {
        "WH-LYON": {"SKU-BOLT-M8": 4200, "SKU-DRILL-18V": 35, "SKU-GLOVE-L": 40},
        "WH-LILLE": {"SKU-BOLT-M8": 300, "SKU-DRILL-18V": 6, "SKU-GLOVE-L": 220},
    },
    "movements": [],
    "purchase_orders": {
        "PO001": {"po_id": "PO001", "sku": "SKU-GLOVE-L", "warehouse_id": "WH-LYON", "quantity": 200,
                  "status": "open"},
    },
}

SCENARIOS = [
    {
        "task_id": "0915-080130",
        "task": (
            "Lille is running low on cordless drills and bolts. Send 12 drills and 1500 M8 bolts from Lyon to "
            "Lille today. Lyon has plenty of bolts, but for the drills please check that Lyon stays above its "
            "reorder level after the transfer."
        ),
        "checks": [
            ("Does Lille hold 18 drills and 1800 bolts?", '''
def check_func(final_state):
    s = final_state["stock"]["WH-LILLE"]
    return s["SKU-DRILL-18V"] == 18 and s["SKU-BOLT-M8"] == 1800
'''),
            ("Does Lyon hold 23 drills and 2700 bolts?", '''
def check_func(final_state):
    s = final_state["stock"]["WH-LYON"]
    return s["SKU-DRILL-18V"] == 23 and s["SKU-BOLT-M8"] == 2700
'''),
            ("Were both transfers recorded as movements?", '''
def check_func(final_state):
    moved = {(m["sku"], m["warehouse_id"], m["quantity"]) for m in final_state["movements"]}
    return {("SKU-DRILL-18V", "WH-LYON", -12), ("SKU-BOLT-M8", "WH-LILLE", 1500)} <= moved
'''),
        ],
        "solution": [
            ("check_stock", {"sku": "SKU-DRILL-18V"}),
            ("search_skus", {"text": "bolt"}),
            ("transfer_stock", {"sku": "SKU-DRILL-18V", "from_warehouse": "WH-LYON", "to_warehouse": "WH-LILLE",
                                "quantity": 12}),
            ("transfer_stock", {"sku": "SKU-BOLT-M8", "from_warehouse": "WH-LYON", "to_warehouse": "WH-LILLE",
                                "quantity": 1500}),
        ],
    },
    {
        "task_id": "0915-101742",
        "task": (
            "The glove delivery for Lyon has arrived: receive the open purchase order. During unpacking we "
            "found 8 pairs damaged, so write those off in Lyon with the reason 'damaged'. Finally, raise the "
            "glove reorder level to 80."
        ),
        "checks": [
            ("Has PO001 been received?", '''
def check_func(final_state):
    return final_state["purchase_orders"]["PO001"]["status"] == "received"
'''),
            ("Does Lyon hold 232 gloves (40 + 200 - 8)?", '''
def check_func(final_state):
    return final_state["stock"]["WH-LYON"]["SKU-GLOVE-L"] == 232
'''),
            ("Is there a -8 'damaged' movement and a reorder level of 80?", '''
def check_func(final_state):
    damaged = any(m["sku"] == "SKU-GLOVE-L" and m["quantity"] == -8 and m["reason"] == "damaged"
                  for m in final_state["movements"])
    return damaged and final_state["skus"]["SKU-GLOVE-L"]["reorder_level"] == 80
'''),
        ],
        "solution": [
            ("receive_purchase_order", {"po_id": "PO001"}),
            ("adjust_stock", {"sku": "SKU-GLOVE-L", "warehouse_id": "WH-LYON", "delta": -8, "reason": "damaged"}),
            ("set_reorder_level", {"sku": "SKU-GLOVE-L", "level": 80}),
        ],
    },
    {
        "task_id": "0915-143308",
        "task": (
            "Find everything that is at or below its reorder level in Lille, and for each such SKU place a "
            "purchase order to Lille for ten times its reorder level. Do not order anything that is not low."
        ),
        "checks": [
            ("Is there an open PO for 100 drills to Lille?", '''
def check_func(final_state):
    return any(p["sku"] == "SKU-DRILL-18V" and p["warehouse_id"] == "WH-LILLE" and p["quantity"] == 100
               and p["status"] == "open" for p in final_state["purchase_orders"].values())
'''),
            ("Is there an open PO for 5000 bolts to Lille?", '''
def check_func(final_state):
    return any(p["sku"] == "SKU-BOLT-M8" and p["warehouse_id"] == "WH-LILLE" and p["quantity"] == 5000
               for p in final_state["purchase_orders"].values())
'''),
            ("Were exactly two new purchase orders placed, none for gloves?", '''
def check_func(final_state):
    new = [p for k, p in final_state["purchase_orders"].items() if k not in initial_state["purchase_orders"]]
    return len(new) == 2 and all(p["sku"] != "SKU-GLOVE-L" for p in new)
'''),
        ],
        "solution": [
            ("list_low_stock", {"warehouse_id": "WH-LILLE"}),
            ("create_purchase_order", {"sku": "SKU-BOLT-M8", "warehouse_id": "WH-LILLE", "quantity": 5000}),
            ("create_purchase_order", {"sku": "SKU-DRILL-18V", "warehouse_id": "WH-LILLE", "quantity": 100}),
        ],
    },
]
