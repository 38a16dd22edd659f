"""with_structured_output(..., method="json_mode"): response_format json_object, parsed into a dict."""

from langchain_openai import ChatOpenAI

llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)
schema = {
    "title": "Capital",
    "description": "A country's capital city.",
    "type": "object",
    "properties": {"country": {"type": "string"}, "capital": {"type": "string"}, "population_millions": {"type": "number"}},
    "required": ["country", "capital"],
}
structured = llm.with_structured_output(schema, method="json_mode")
for country in ["France", "Japan"]:
    answer = structured.invoke(
        f"Return JSON with keys country, capital and population_millions for {country}."
    )
    print(sorted(answer.items()))
