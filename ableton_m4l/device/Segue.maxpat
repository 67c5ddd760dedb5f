{
 "patcher": {
  "fileversion": 1,
  "appversion": {
   "major": 8,
   "minor": 6,
   "revision": 0,
   "architecture": "x64",
   "modernui": 1
  },
  "classnamespace": "box",
  "rect": [
   100.0,
   100.0,
   960.0,
   560.0
  ],
  "openinpresentation": 1,
  "devicewidth": 260.0,
  "default_fontsize": 10.0,
  "default_fontname": "Arial Bold",
  "gridsize": [
   8.0,
   8.0
  ],
  "description": "Segue: inpaint, continue and generate audio with a local Segue engine (protocol v1 over OSC).",
  "boxes": [
   {
    "box": {
     "id": "obj-1",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "patching_rect": [
      30.0,
      20.0,
      80.0,
      22.0
     ],
     "text": "plugin~ 2",
     "outlettype": [
      "signal",
      "signal"
     ]
    }
   },
   {
    "box": {
     "id": "obj-2",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 0,
     "patching_rect": [
      30.0,
      400.0,
      80.0,
      22.0
     ],
     "text": "plugout~ 2"
    }
   },
   {
    "box": {
     "id": "obj-3",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 3,
     "patching_rect": [
      150.0,
      20.0,
      100.0,
      22.0
     ],
     "text": "live.thisdevice",
     "outlettype": [
      "bang",
      "int",
      "int"
     ]
    }
   },
   {
    "box": {
     "id": "obj-4",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 3,
     "patching_rect": [
      150.0,
      50.0,
      40.0,
      22.0
     ],
     "text": "t b b b",
     "outlettype": [
      "bang",
      "bang",
      "bang"
     ]
    }
   },
   {
    "box": {
     "id": "obj-5",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 4,
     "patching_rect": [
      260.0,
      80.0,
      80.0,
      22.0
     ],
     "text": "dspstate~",
     "outlettype": [
      "int",
      "float",
      "int",
      "int"
     ]
    }
   },
   {
    "box": {
     "id": "obj-6",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      260.0,
      110.0,
      80.0,
      22.0
     ],
     "text": "prepend sr",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-7",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 4,
     "patching_rect": [
      150.0,
      200.0,
      240.0,
      22.0
     ],
     "text": "js segue_device.js",
     "outlettype": [
      "",
      "",
      "",
      ""
     ],
     "saved_object_attributes": {
      "filename": "segue_device.js",
      "parameter_enable": 0
     }
    }
   },
   {
    "box": {
     "id": "obj-8",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      150.0,
      260.0,
      150.0,
      22.0
     ],
     "text": "udpsend 127.0.0.1 9137"
    }
   },
   {
    "box": {
     "id": "obj-9",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      420.0,
      160.0,
      160.0,
      22.0
     ],
     "text": "udpreceive 9138 @defer 1",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-10",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 5,
     "patching_rect": [
      150.0,
      300.0,
      220.0,
      22.0
     ],
     "text": "route status engine progress result",
     "outlettype": [
      "",
      "",
      "",
      "",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-11",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      420.0,
      260.0,
      160.0,
      22.0
     ],
     "text": "; max launchbrowser $1",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-12",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      600.0,
      20.0,
      60.0,
      18.0
     ],
     "text": "Segue",
     "presentation": 1,
     "presentation_rect": [
      6.0,
      2.0,
      60.0,
      18.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-13",
     "maxclass": "live.text",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      600.0,
      60.0,
      62.0,
      18.0
     ],
     "outlettype": [
      "",
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      6.0,
      22.0,
      62.0,
      18.0
     ],
     "mode": 0,
     "text": "Continue",
     "texton": "Continue",
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "Segue Continue",
       "parameter_shortname": "Continue",
       "parameter_type": 2,
       "parameter_enum": [
        "off",
        "on"
       ],
       "parameter_mmax": 1
      }
     },
     "varname": "segue_continue"
    }
   },
   {
    "box": {
     "id": "obj-14",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      600.0,
      90.0,
      80.0,
      22.0
     ],
     "text": "continue_clip",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-15",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "patching_rect": [
      600.0,
      115.0,
      40.0,
      22.0
     ],
     "text": "sel 1",
     "outlettype": [
      "bang",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-16",
     "maxclass": "live.text",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      680.0,
      60.0,
      62.0,
      18.0
     ],
     "outlettype": [
      "",
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      72.0,
      22.0,
      62.0,
      18.0
     ],
     "mode": 0,
     "text": "Inpaint",
     "texton": "Inpaint",
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "Segue Inpaint",
       "parameter_shortname": "Inpaint",
       "parameter_type": 2,
       "parameter_enum": [
        "off",
        "on"
       ],
       "parameter_mmax": 1
      }
     },
     "varname": "segue_inpaint"
    }
   },
   {
    "box": {
     "id": "obj-17",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      680.0,
      90.0,
      80.0,
      22.0
     ],
     "text": "inpaint",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-18",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "patching_rect": [
      680.0,
      115.0,
      40.0,
      22.0
     ],
     "text": "sel 1",
     "outlettype": [
      "bang",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-19",
     "maxclass": "live.text",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      760.0,
      60.0,
      62.0,
      18.0
     ],
     "outlettype": [
      "",
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      138.0,
      22.0,
      62.0,
      18.0
     ],
     "mode": 0,
     "text": "Generate",
     "texton": "Generate",
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "Segue Generate",
       "parameter_shortname": "Generate",
       "parameter_type": 2,
       "parameter_enum": [
        "off",
        "on"
       ],
       "parameter_mmax": 1
      }
     },
     "varname": "segue_generate"
    }
   },
   {
    "box": {
     "id": "obj-20",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      760.0,
      90.0,
      80.0,
      22.0
     ],
     "text": "generate",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-21",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "patching_rect": [
      760.0,
      115.0,
      40.0,
      22.0
     ],
     "text": "sel 1",
     "outlettype": [
      "bang",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-22",
     "maxclass": "live.text",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      840.0,
      60.0,
      62.0,
      18.0
     ],
     "outlettype": [
      "",
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      204.0,
      22.0,
      50.0,
      18.0
     ],
     "mode": 0,
     "text": "Cancel",
     "texton": "Cancel",
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "Segue Cancel",
       "parameter_shortname": "Cancel",
       "parameter_type": 2,
       "parameter_enum": [
        "off",
        "on"
       ],
       "parameter_mmax": 1
      }
     },
     "varname": "segue_cancel"
    }
   },
   {
    "box": {
     "id": "obj-23",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      840.0,
      90.0,
      80.0,
      22.0
     ],
     "text": "cancel",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-24",
     "maxclass": "newobj",
     "numinlets": 2,
     "numoutlets": 2,
     "patching_rect": [
      840.0,
      115.0,
      40.0,
      22.0
     ],
     "text": "sel 1",
     "outlettype": [
      "bang",
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-25",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      600.0,
      160.0,
      40.0,
      18.0
     ],
     "text": "Bars",
     "presentation": 1,
     "presentation_rect": [
      6.0,
      44.0,
      30.0,
      18.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-26",
     "maxclass": "live.numbox",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      640.0,
      160.0,
      40.0,
      17.0
     ],
     "outlettype": [
      "",
      "float"
     ],
     "presentation": 1,
     "presentation_rect": [
      36.0,
      44.0,
      36.0,
      17.0
     ],
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "Segue Bars",
       "parameter_shortname": "Bars",
       "parameter_type": 1,
       "parameter_mmin": 1,
       "parameter_mmax": 32,
       "parameter_initial": [
        4
       ],
       "parameter_initial_enable": 1,
       "parameter_unitstyle": 0
      }
     },
     "varname": "segue_bars"
    }
   },
   {
    "box": {
     "id": "obj-27",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      640.0,
      190.0,
      90.0,
      22.0
     ],
     "text": "prepend bars",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-28",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      700.0,
      160.0,
      40.0,
      18.0
     ],
     "text": "Var",
     "presentation": 1,
     "presentation_rect": [
      78.0,
      44.0,
      26.0,
      18.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-29",
     "maxclass": "live.numbox",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      740.0,
      160.0,
      40.0,
      17.0
     ],
     "outlettype": [
      "",
      "float"
     ],
     "presentation": 1,
     "presentation_rect": [
      104.0,
      44.0,
      30.0,
      17.0
     ],
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "Segue Variations",
       "parameter_shortname": "Var",
       "parameter_type": 1,
       "parameter_mmin": 1,
       "parameter_mmax": 4,
       "parameter_initial": [
        1
       ],
       "parameter_initial_enable": 1,
       "parameter_unitstyle": 0
      }
     },
     "varname": "segue_variations"
    }
   },
   {
    "box": {
     "id": "obj-30",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      740.0,
      190.0,
      90.0,
      22.0
     ],
     "text": "prepend variations",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-31",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      800.0,
      160.0,
      40.0,
      18.0
     ],
     "text": "Seed",
     "presentation": 1,
     "presentation_rect": [
      140.0,
      44.0,
      32.0,
      18.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-32",
     "maxclass": "live.numbox",
     "numinlets": 1,
     "numoutlets": 2,
     "patching_rect": [
      840.0,
      160.0,
      50.0,
      17.0
     ],
     "outlettype": [
      "",
      "float"
     ],
     "presentation": 1,
     "presentation_rect": [
      172.0,
      44.0,
      50.0,
      17.0
     ],
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "Segue Seed",
       "parameter_shortname": "Seed",
       "parameter_type": 1,
       "parameter_mmin": 0,
       "parameter_mmax": 99999,
       "parameter_initial": [
        0
       ],
       "parameter_initial_enable": 1,
       "parameter_unitstyle": 0
      }
     },
     "varname": "segue_seed"
    }
   },
   {
    "box": {
     "id": "obj-33",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      840.0,
      190.0,
      90.0,
      22.0
     ],
     "text": "prepend seed",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-34",
     "maxclass": "comment",
     "numinlets": 1,
     "numoutlets": 0,
     "patching_rect": [
      600.0,
      220.0,
      50.0,
      18.0
     ],
     "text": "Prompt",
     "presentation": 1,
     "presentation_rect": [
      6.0,
      64.0,
      44.0,
      18.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-35",
     "maxclass": "textedit",
     "numinlets": 1,
     "numoutlets": 4,
     "patching_rect": [
      650.0,
      220.0,
      200.0,
      20.0
     ],
     "outlettype": [
      "",
      "int",
      "",
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      50.0,
      64.0,
      204.0,
      20.0
     ],
     "keymode": 1,
     "lines": 1,
     "outputmode": 1,
     "varname": "segue_prompt",
     "parameter_enable": 1,
     "bangmode": 1,
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "segue_prompt",
       "parameter_shortname": "Prompt",
       "parameter_type": 3,
       "parameter_invisible": 1
      }
     }
    }
   },
   {
    "box": {
     "id": "obj-36",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      650.0,
      250.0,
      100.0,
      22.0
     ],
     "text": "prepend prompt",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-37",
     "maxclass": "slider",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      600.0,
      300.0,
      150.0,
      14.0
     ],
     "outlettype": [
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      6.0,
      88.0,
      248.0,
      8.0
     ],
     "orientation": 1,
     "size": 101,
     "ignoreclick": 1
    }
   },
   {
    "box": {
     "id": "obj-38",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      600.0,
      330.0,
      80.0,
      22.0
     ],
     "text": "prepend set",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-39",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      600.0,
      352.0,
      80.0,
      22.0
     ],
     "text": "prepend set",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-40",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      600.0,
      380.0,
      248.0,
      20.0
     ],
     "text": "Engine: checking...",
     "outlettype": [
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      6.0,
      100.0,
      248.0,
      20.0
     ],
     "ignoreclick": 1
    }
   },
   {
    "box": {
     "id": "obj-41",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      600.0,
      402.0,
      80.0,
      22.0
     ],
     "text": "prepend set",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-42",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      600.0,
      430.0,
      248.0,
      20.0
     ],
     "text": "Inpaint uses the loop brace (Live's API has no time selection).",
     "outlettype": [
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      6.0,
      122.0,
      248.0,
      20.0
     ],
     "ignoreclick": 1
    }
   },
   {
    "box": {
     "id": "obj-43",
     "maxclass": "newobj",
     "numinlets": 1,
     "numoutlets": 1,
     "patching_rect": [
      600.0,
      452.0,
      80.0,
      22.0
     ],
     "text": "prepend set",
     "outlettype": [
      ""
     ]
    }
   },
   {
    "box": {
     "id": "obj-44",
     "maxclass": "message",
     "numinlets": 2,
     "numoutlets": 1,
     "patching_rect": [
      600.0,
      480.0,
      248.0,
      20.0
     ],
     "text": "",
     "outlettype": [
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      6.0,
      144.0,
      248.0,
      20.0
     ],
     "ignoreclick": 1
    }
   },
   {
    "box": {
     "id": "obj-45",
     "maxclass": "comment",
     "text": "Host",
     "numinlets": 1,
     "numoutlets": 0,
     "presentation": 1,
     "presentation_rect": [
      6.0,
      168.0,
      30.0,
      18.0
     ],
     "patching_rect": [
      600.0,
      520.0,
      40.0,
      18.0
     ],
     "fontsize": 10.0
    }
   },
   {
    "box": {
     "id": "obj-46",
     "maxclass": "textedit",
     "numinlets": 1,
     "numoutlets": 4,
     "outlettype": [
      "",
      "int",
      "",
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      36.0,
      168.0,
      90.0,
      18.0
     ],
     "patching_rect": [
      640.0,
      520.0,
      100.0,
      20.0
     ],
     "fontsize": 10.0,
     "lines": 1,
     "keymode": 1,
     "text": "127.0.0.1",
     "varname": "segue_host",
     "parameter_enable": 1,
     "bangmode": 1,
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "segue_host",
       "parameter_shortname": "Host",
       "parameter_type": 3,
       "parameter_invisible": 1,
       "parameter_initial_enable": 1,
       "parameter_initial": [
        "127.0.0.1"
       ]
      }
     }
    }
   },
   {
    "box": {
     "id": "obj-47",
     "maxclass": "newobj",
     "text": "prepend engine_host",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      640.0,
      546.0,
      110.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-48",
     "maxclass": "comment",
     "text": "Port",
     "numinlets": 1,
     "numoutlets": 0,
     "presentation": 1,
     "presentation_rect": [
      130.0,
      168.0,
      30.0,
      18.0
     ],
     "patching_rect": [
      760.0,
      520.0,
      40.0,
      18.0
     ],
     "fontsize": 10.0
    }
   },
   {
    "box": {
     "id": "obj-49",
     "maxclass": "live.numbox",
     "varname": "segue_port",
     "numinlets": 1,
     "numoutlets": 2,
     "outlettype": [
      "",
      "float"
     ],
     "parameter_enable": 1,
     "presentation": 1,
     "presentation_rect": [
      160.0,
      168.0,
      50.0,
      17.0
     ],
     "patching_rect": [
      800.0,
      520.0,
      50.0,
      17.0
     ],
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "segue_port",
       "parameter_shortname": "Port",
       "parameter_type": 1,
       "parameter_mmin": 1.0,
       "parameter_mmax": 65535.0,
       "parameter_initial_enable": 1,
       "parameter_initial": [
        9137
       ],
       "parameter_unitstyle": 0
      }
     }
    }
   },
   {
    "box": {
     "id": "obj-50",
     "maxclass": "newobj",
     "text": "prepend engine_port",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      800.0,
      546.0,
      100.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-51",
     "maxclass": "comment",
     "text": "Hit",
     "numinlets": 1,
     "numoutlets": 0,
     "presentation": 1,
     "presentation_rect": [
      6.0,
      190.0,
      24.0,
      18.0
     ],
     "patching_rect": [
      600.0,
      580.0,
      40.0,
      18.0
     ],
     "fontsize": 10.0
    }
   },
   {
    "box": {
     "id": "obj-52",
     "maxclass": "live.menu",
     "varname": "segue_hit",
     "numinlets": 1,
     "numoutlets": 3,
     "outlettype": [
      "",
      "",
      ""
     ],
     "parameter_enable": 1,
     "presentation": 1,
     "presentation_rect": [
      30.0,
      190.0,
      64.0,
      15.0
     ],
     "patching_rect": [
      640.0,
      580.0,
      80.0,
      15.0
     ],
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "segue_hit",
       "parameter_shortname": "Hit",
       "parameter_type": 2,
       "parameter_enum": [
        "replace",
        "remove"
       ],
       "parameter_initial_enable": 1,
       "parameter_initial": [
        0
       ]
      }
     }
    }
   },
   {
    "box": {
     "id": "obj-53",
     "maxclass": "newobj",
     "text": "prepend hit",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      640.0,
      602.0,
      80.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-54",
     "maxclass": "live.toggle",
     "varname": "segue_locator_regions",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "parameter_enable": 1,
     "presentation": 1,
     "presentation_rect": [
      100.0,
      191.0,
      15.0,
      15.0
     ],
     "patching_rect": [
      740.0,
      580.0,
      15.0,
      15.0
     ],
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "segue_locator_regions",
       "parameter_shortname": "Locators",
       "parameter_type": 2,
       "parameter_enum": [
        "off",
        "on"
       ],
       "parameter_initial_enable": 1,
       "parameter_initial": [
        0
       ]
      }
     }
    }
   },
   {
    "box": {
     "id": "obj-55",
     "maxclass": "comment",
     "text": "Locator pairs = regions",
     "numinlets": 1,
     "numoutlets": 0,
     "presentation": 1,
     "presentation_rect": [
      116.0,
      190.0,
      138.0,
      18.0
     ],
     "patching_rect": [
      760.0,
      580.0,
      140.0,
      18.0
     ],
     "fontsize": 10.0
    }
   },
   {
    "box": {
     "id": "obj-56",
     "maxclass": "newobj",
     "text": "prepend locator_regions",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      740.0,
      602.0,
      120.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-57",
     "maxclass": "comment",
     "text": "Backend: inpaint / continue / generate",
     "numinlets": 1,
     "numoutlets": 0,
     "presentation": 1,
     "presentation_rect": [
      6.0,
      210.0,
      248.0,
      18.0
     ],
     "patching_rect": [
      600.0,
      640.0,
      220.0,
      18.0
     ],
     "fontsize": 10.0
    }
   },
   {
    "box": {
     "id": "obj-58",
     "maxclass": "textedit",
     "numinlets": 1,
     "numoutlets": 4,
     "outlettype": [
      "",
      "int",
      "",
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      6.0,
      228.0,
      80.0,
      18.0
     ],
     "patching_rect": [
      600.0,
      660.0,
      100.0,
      20.0
     ],
     "fontsize": 10.0,
     "lines": 1,
     "keymode": 1,
     "text": "",
     "varname": "segue_backend_inpaint",
     "parameter_enable": 1,
     "bangmode": 1,
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "segue_backend_inpaint",
       "parameter_shortname": "Inpaint backend",
       "parameter_type": 3,
       "parameter_invisible": 1
      }
     }
    }
   },
   {
    "box": {
     "id": "obj-59",
     "maxclass": "newobj",
     "text": "prepend backend_inpaint",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      600.0,
      686.0,
      110.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-60",
     "maxclass": "textedit",
     "numinlets": 1,
     "numoutlets": 4,
     "outlettype": [
      "",
      "int",
      "",
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      90.0,
      228.0,
      80.0,
      18.0
     ],
     "patching_rect": [
      710.0,
      660.0,
      100.0,
      20.0
     ],
     "fontsize": 10.0,
     "lines": 1,
     "keymode": 1,
     "text": "",
     "varname": "segue_backend_continue",
     "parameter_enable": 1,
     "bangmode": 1,
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "segue_backend_continue",
       "parameter_shortname": "Continue backend",
       "parameter_type": 3,
       "parameter_invisible": 1
      }
     }
    }
   },
   {
    "box": {
     "id": "obj-61",
     "maxclass": "newobj",
     "text": "prepend backend_continue",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      710.0,
      686.0,
      110.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-62",
     "maxclass": "textedit",
     "numinlets": 1,
     "numoutlets": 4,
     "outlettype": [
      "",
      "int",
      "",
      ""
     ],
     "presentation": 1,
     "presentation_rect": [
      174.0,
      228.0,
      80.0,
      18.0
     ],
     "patching_rect": [
      820.0,
      660.0,
      100.0,
      20.0
     ],
     "fontsize": 10.0,
     "lines": 1,
     "keymode": 1,
     "text": "",
     "varname": "segue_backend_generate",
     "parameter_enable": 1,
     "bangmode": 1,
     "saved_attribute_attributes": {
      "valueof": {
       "parameter_longname": "segue_backend_generate",
       "parameter_shortname": "Generate backend",
       "parameter_type": 3,
       "parameter_invisible": 1
      }
     }
    }
   },
   {
    "box": {
     "id": "obj-63",
     "maxclass": "newobj",
     "text": "prepend backend_generate",
     "numinlets": 1,
     "numoutlets": 1,
     "outlettype": [
      ""
     ],
     "patching_rect": [
      820.0,
      686.0,
      110.0,
      22.0
     ]
    }
   },
   {
    "box": {
     "id": "obj-64",
     "maxclass": "newobj",
     "text": "t b b b b b",
     "numinlets": 1,
     "numoutlets": 5,
     "outlettype": [
      "bang",
      "bang",
      "bang",
      "bang",
      "bang"
     ],
     "patching_rect": [
      200.0,
      90.0,
      120.0,
      22.0
     ]
    }
   }
  ],
  "lines": [
   {
    "patchline": {
     "source": [
      "obj-1",
      0
     ],
     "destination": [
      "obj-2",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-1",
      1
     ],
     "destination": [
      "obj-2",
      1
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-3",
      0
     ],
     "destination": [
      "obj-4",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-4",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-5",
      1
     ],
     "destination": [
      "obj-6",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-6",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-7",
      0
     ],
     "destination": [
      "obj-8",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-7",
      1
     ],
     "destination": [
      "obj-9",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-9",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-7",
      2
     ],
     "destination": [
      "obj-10",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-7",
      3
     ],
     "destination": [
      "obj-11",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-13",
      0
     ],
     "destination": [
      "obj-15",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-15",
      0
     ],
     "destination": [
      "obj-14",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-14",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-16",
      0
     ],
     "destination": [
      "obj-18",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-18",
      0
     ],
     "destination": [
      "obj-17",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-17",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-19",
      0
     ],
     "destination": [
      "obj-21",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-21",
      0
     ],
     "destination": [
      "obj-20",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-20",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-22",
      0
     ],
     "destination": [
      "obj-24",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-24",
      0
     ],
     "destination": [
      "obj-23",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-23",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-26",
      0
     ],
     "destination": [
      "obj-27",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-27",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-29",
      0
     ],
     "destination": [
      "obj-30",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-30",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-32",
      0
     ],
     "destination": [
      "obj-33",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-33",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-35",
      0
     ],
     "destination": [
      "obj-36",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-36",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-10",
      2
     ],
     "destination": [
      "obj-38",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-38",
      0
     ],
     "destination": [
      "obj-37",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-10",
      1
     ],
     "destination": [
      "obj-39",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-39",
      0
     ],
     "destination": [
      "obj-40",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-10",
      0
     ],
     "destination": [
      "obj-41",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-41",
      0
     ],
     "destination": [
      "obj-42",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-10",
      3
     ],
     "destination": [
      "obj-43",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-43",
      0
     ],
     "destination": [
      "obj-44",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-47",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-46",
      0
     ],
     "destination": [
      "obj-47",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-50",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-49",
      0
     ],
     "destination": [
      "obj-50",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-53",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-52",
      0
     ],
     "destination": [
      "obj-53",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-56",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-54",
      0
     ],
     "destination": [
      "obj-56",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-59",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-58",
      0
     ],
     "destination": [
      "obj-59",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-61",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-60",
      0
     ],
     "destination": [
      "obj-61",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-63",
      0
     ],
     "destination": [
      "obj-7",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-62",
      0
     ],
     "destination": [
      "obj-63",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-4",
      2
     ],
     "destination": [
      "obj-5",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-4",
      1
     ],
     "destination": [
      "obj-64",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-64",
      0
     ],
     "destination": [
      "obj-35",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-64",
      1
     ],
     "destination": [
      "obj-46",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-64",
      2
     ],
     "destination": [
      "obj-58",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-64",
      3
     ],
     "destination": [
      "obj-60",
      0
     ]
    }
   },
   {
    "patchline": {
     "source": [
      "obj-64",
      4
     ],
     "destination": [
      "obj-62",
      0
     ]
    }
   }
  ],
  "dependency_cache": [
   {
    "name": "segue_device.js",
    "bootpath": ".",
    "patcherrelativepath": ".",
    "type": "TEXT",
    "implicit": 1
   },
   {
    "name": "segue_core.js",
    "bootpath": ".",
    "patcherrelativepath": ".",
    "type": "TEXT",
    "implicit": 1
   },
   {
    "name": "segue_live.js",
    "bootpath": ".",
    "patcherrelativepath": ".",
    "type": "TEXT",
    "implicit": 1
   }
  ],
  "autosave": 0
 }
}